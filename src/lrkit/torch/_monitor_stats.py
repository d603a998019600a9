"""The Monitor's statistics from its per-parameter measurements, computed on the host.

On a sampled update the device only measures, per parameter tensor, norms (of the gradient,
the update and the weights) and, for the cosine, a dot product: a few ``torch._foreach_*``
calls and one stack. The rest, sums per group and per layer, square roots, ratios and
cosines, is done here on the floats read back every ``every`` updates: a few dozen float
operations per sampled update, where the same on the device took some thirty small ops (each
costing more, on a CPU, than its arithmetic). Python floats are IEEE doubles, so the values
are those of float64 device arithmetic up to the order of the sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Buckets", "cosines", "statistics"]


class Buckets:
    """Sums of per-parameter values (parameters in optimizer order) over all parameters, per
    group and per layer: ``[all, group 0..G-1, layer 0..L-1]``.

    Args:
        group_of: each parameter's group (0..G-1).
        layer_of: each parameter's layer, its owning module (0..L-1), or -1 for none.
        n_groups: G.
        n_layers: L.
    """

    def __init__(
        self, group_of: Sequence[int], layer_of: Sequence[int], n_groups: int, n_layers: int
    ) -> None:
        self.n_groups, self.n_layers = n_groups, n_layers
        self._groups = [[i for i, g in enumerate(group_of) if g == b] for b in range(n_groups)]
        self._layers = [[i for i, v in enumerate(layer_of) if v == b] for b in range(n_layers)]

    def sums(self, values: Sequence[float], *, layers: bool = True) -> list[float]:
        """``values`` summed: ``[all, per group, per layer]`` (per layer only if ``layers``)."""
        groups = [sum([values[i] for i in m]) for m in self._groups]
        per_layer = [sum([values[i] for i in m]) for m in self._layers] if layers else []
        return [sum(groups), *groups, *per_layer]


def statistics(norms: Sequence[float], buckets: Buckets) -> list[float]:
    """``[global grad norm, group grad norms, group ratios, layer ratios]`` from per-parameter
    norms ``[gradient (P values), update Δw (P), weights after it (P)]``. A ratio is
    ``||Δw|| / ||w||`` over the bucket (0 where the weights are 0); a gradient norm that is
    not finite is inf."""
    p = len(norms) // 3
    grad, step, weight = (
        buckets.sums([v * v for v in norms[i * p : (i + 1) * p]]) for i in range(3)
    )
    out = [math.sqrt(v) if math.isfinite(v) else math.inf for v in grad[: buckets.n_groups + 1]]
    out += [
        math.sqrt(d) / math.sqrt(w) if w > 0 else 0.0
        for d, w in zip(step[1:], weight[1:], strict=True)
    ]
    return out


def cosines(
    parts: Sequence[float], buckets: Buckets, sign: Sequence[float] | None = None
) -> list[float]:
    """``[global, per group]`` ``cos(Δw_k, -g_{k+1})`` from per-parameter parts
    ``[||g_{k+1}|| (P values), g_{k+1} · (w_k - w_{k+1}) (P), ||w_k - w_{k+1}|| (P)]``, each
    dot times its parameter's ``sign`` (-1 where the optimizer maximises: the descent
    direction is then ``+g``). NaN where a norm is 0 or a part is not finite."""
    p = len(parts) // 3
    dots = (
        parts[p : 2 * p]
        if sign is None
        else [d * s for d, s in zip(parts[p : 2 * p], sign, strict=True)]
    )
    grad = buckets.sums([v * v for v in parts[:p]], layers=False)
    dot = buckets.sums(dots, layers=False)
    step = buckets.sums([v * v for v in parts[2 * p :]], layers=False)
    out = []
    for g, d, s in zip(grad, dot, step, strict=True):
        den = math.sqrt(g * s)
        ok = den > 0 and math.isfinite(den) and math.isfinite(d)
        out.append(d / den if ok else math.nan)
    return out
