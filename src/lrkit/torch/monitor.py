"""``lrkit.torch.Monitor``: record a PyTorch run through the optimizer's step hooks, then say
what its learning rate is doing wrong (:mod:`lrkit.diagnostics`).

Two lines in a training loop::

    monitor = Monitor(model, optimizer, path="run.csv")
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        monitor.log(loss)                    # one extra call per step
        optimizer.zero_grad()
    monitor.log_val(val_loss=evaluate(model))  # one per evaluation
    for finding in monitor.diagnose():
        print(finding)

Per optimizer update ``k`` (counted by the hooks, so skipped ``GradScaler`` steps are not
updates) it records the loss and each group's hyperparameters (read before the update, the
values it used). On sampled updates it also measures, on the parameters' device: the
gradient norm (global and per group) before the update, and the update-to-weight ratio
``||w_after - w_before|| / ||w_after||`` per group and per layer (a module owning parameters),
which needs a copy of the weights for that one update; and at the next update, the cosine
between that update and the new descent direction, ``cos(Δw_k, -g_{k+1})`` (global and per
group): positive when the loss still falls along the step just taken (a longer step would
have gone further), negative when the step overshot. The sampling interval grows with the
update count, ``min(every, max(1, k // 25))`` after a sampled update ``k``: every update of the
first 50, then sparser, every ``every`` from update ``25 * every`` on. A run's start, where
most happens, is seen in detail, a short run still gets enough samples to judge (about 25 per
doubling of its length), and a long one costs what ``every`` costs. Nothing is read back to
the host per
step: losses and statistics stay on the device and are copied in one transfer every ``every``
updates (at the next update's pre-hook, once the last loss has been logged), then appended
(and flushed) to the log file and TensorBoard.
"""

from __future__ import annotations

import atexit
import math
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from lrkit.diagnostics import Finding, RunLog, diagnose
from lrkit.diagnostics.io import LogWriter

__all__ = ["Monitor"]

_DEFAULT_HPARAMS = ("lr", "momentum")
#: After a sampled update ``k`` the next is ``min(every, max(1, k // _GROWTH))`` later: the
#: first updates are all sampled (a blow-up there is seen before it settles), about 25 per
#: doubling of the run after that, and every ``every`` from ``_GROWTH * every`` on.
_GROWTH = 25


class Monitor:
    """Record loss, hyperparameters, gradient norms and update ratios of a run; diagnose it.

    Args:
        model: the ``torch.nn.Module`` trained (its modules name the layers).
        optimizer: its optimizer; hooks are registered on it (removed by :meth:`close`).
        every: the longest interval, in updates, between costly statistics (reached at update
            ``25 * every``; denser before), and the interval between reads from the device.
        path: a log file written while training (``.csv`` or ``.jsonl``), or None.
        tensorboard: a folder or a ``SummaryWriter`` to also write scalars to, or None.
        hyperparameters: the group keys recorded each update (``"momentum"`` is Adam's
            ``betas[0]`` where there is no ``momentum`` key); keys a group lacks are skipped.
        val_metrics: the validation columns of a CSV log (JSON lines take any).
        layers: record per-layer ratios (else only per group).

    Raises:
        TypeError: not a module / optimizer.
        ValueError: ``every`` not a positive integer.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        every: int = 20,
        path: str | os.PathLike[str] | None = None,
        tensorboard: Any = None,
        hyperparameters: Sequence[str] = _DEFAULT_HPARAMS,
        val_metrics: Sequence[str] = ("val_loss",),
        layers: bool = True,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"Monitor: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"Monitor: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Monitor: every must be a positive integer, got every={every!r}")
        self.model, self.optimizer, self.every = model, optimizer, every
        self._groups = [str(g.get("name", i)) for i, g in enumerate(optimizer.param_groups)]
        self._hkeys = [h for h in hyperparameters if _has(optimizer.param_groups[0], h)]
        self._hcols = [
            (h, gi, self._hname(h, gi)) for h in self._hkeys for gi in range(len(self._groups))
        ]
        self._index_params(layers)
        self.step = 0  # updates made
        self._next_sample = 0  # the next update whose statistics are measured
        self._rows: list[dict[str, float]] = []
        self._losses: list[tuple[int, Any]] = []  # (update, loss tensor/float), unread
        self._stats: list[tuple[int, torch.Tensor]] = []  # (update, stat vector), unread
        self._hrows: list[dict[str, float]] = []  # hyperparameters of the unread updates
        self._pending: Any = None
        self._pending_n = 0
        self._last_has_loss = True
        self._before: list[torch.Tensor] | None = None
        self._grad: torch.Tensor | None = None
        # the last sampled update: (k, Δw_k, its squared norms), for the next step's cosine
        self._delta: tuple[int, list[torch.Tensor], torch.Tensor] | None = None
        self._align: list[tuple[int, torch.Tensor]] = []  # (update, cosines), unread
        self._writer = None if path is None else LogWriter(path, self._columns(val_metrics))
        self._tb, self._own_tb = _tensorboard(tensorboard)
        ref = weakref.ref(self)
        self._hooks = [
            optimizer.register_step_pre_hook(lambda *a: _call(ref, "_pre")),
            optimizer.register_step_post_hook(lambda *a: _call(ref, "_post")),
        ]
        atexit.register(_call, ref, "close")

    # ------------------------------------------------------------------ setup
    def _index_params(self, layers: bool) -> None:
        owner: dict[int, str] = {}
        if layers:
            for mname, mod in self.model.named_modules():
                for p in mod.parameters(recurse=False):
                    owner.setdefault(id(p), mname or "(root)")
        self._params: list[torch.Tensor] = []
        group_of, layer_of = [], []
        self._layers: list[str] = []
        for gi, g in enumerate(self.optimizer.param_groups):
            for p in g["params"]:
                self._params.append(p)
                group_of.append(gi)
                name = owner.get(id(p))
                if name is not None and name not in self._layers:
                    self._layers.append(name)
                layer_of.append(-1 if name is None else self._layers.index(name))
        dev = self._params[0].device if self._params else torch.device("cpu")
        self._device = dev
        self._group_of = torch.tensor(group_of, dtype=torch.long, device=dev)
        keep = [i for i, v in enumerate(layer_of) if v >= 0]
        self._layer_keep = torch.tensor(keep, dtype=torch.long, device=dev)
        self._layer_of = torch.tensor([layer_of[i] for i in keep], dtype=torch.long, device=dev)

    def _hname(self, key: str, gi: int) -> str:
        return key if len(self._groups) == 1 else f"{key}/{self._groups[gi]}"

    def _columns(self, val_metrics: Sequence[str]) -> list[str]:
        cols = ["step", "loss"]
        cols += [self._hname(h, gi) for h in self._hkeys for gi in range(len(self._groups))]
        cols.append("grad_norm")
        if len(self._groups) > 1:
            cols += [f"grad_norm/{g}" for g in self._groups]
        cols.append("grad_update_cos")
        if len(self._groups) > 1:
            cols += [f"grad_update_cos/{g}" for g in self._groups]
        cols += [f"group_ratio/{g}" for g in self._groups]
        cols += [f"ratio/{name}" for name in self._layers]
        cols += [m if m.startswith("val_") else f"val_{m}" for m in val_metrics]
        return cols

    # ------------------------------------------------------------------ the loop's calls
    def log(self, loss: torch.Tensor | float) -> None:
        """Record the training loss of the current update (call once per step, before or after
        ``optimizer.step()``; several calls before one update, e.g. per micro-batch, are
        averaged). No host sync: a tensor stays on its device until the next read."""
        value = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        if not self._last_has_loss and self._pending is None:
            self._losses.append((self.step - 1, value))
            self._last_has_loss = True
            return
        self._pending = value if self._pending is None else self._pending + value
        self._pending_n += 1

    def log_val(self, **metrics: float) -> None:
        """Record validation metrics at the last update (``log_val(val_loss=0.31, acc=0.9)``;
        names get a ``val_`` prefix unless they have one); written at once."""
        if not metrics:
            raise ValueError("Monitor.log_val: give at least one metric, e.g. val_loss=...")
        self.flush()
        row: dict[str, float] = {"step": max(0, self.step - 1)}
        for k, v in metrics.items():
            row[k if k.startswith("val_") else f"val_{k}"] = float(v)
        self._emit([row])

    # ------------------------------------------------------------------ hooks
    def _pre(self) -> None:
        k = self.step
        if self._delta is not None:
            with torch.no_grad():
                k0, step, step_sq = self._delta
                self._align.append((k0, self._alignment(step, step_sq)))
            self._delta = None
        if k and k % self.every == 0:
            self.flush()  # updates < k, their losses logged before or after their step
        if self._pending is not None:
            v = self._pending / self._pending_n if self._pending_n > 1 else self._pending
            self._losses.append((k, v))
            self._pending, self._pending_n = None, 0
            self._last_has_loss = True
        else:
            self._last_has_loss = False
        groups = self.optimizer.param_groups
        hrow: dict[str, float] = {}
        for key, gi, column in self._hcols:
            if gi < len(groups):
                v = _get(groups[gi], key)
                if v is not None:
                    hrow[column] = v
        self._hrows.append(hrow)
        if k >= self._next_sample and self._params:
            self._next_sample = k + min(self.every, max(1, k // _GROWTH))
            with torch.no_grad():
                self._grad = _sq_norms(self._grads(), self._device)
                self._before = [p.detach().clone() for p in self._params]

    def _post(self) -> None:
        k = self.step
        if self._before is not None and self._grad is not None:
            with torch.no_grad():
                after = [p.detach() for p in self._params]
                step = list(torch._foreach_sub(after, self._before))
                step_sq = _sq_norms(step, self._device)
                self._stats.append((k, self._statistics(after, step_sq, self._grad)))
                self._delta = (k, step, step_sq)
            self._before, self._grad = None, None
        self.step = k + 1

    def _grads(self) -> list[torch.Tensor]:
        return [
            p.grad.detach() if p.grad is not None else torch.zeros((), device=p.device)
            for p in self._params
        ]

    def _alignment(self, step: list[torch.Tensor], step_sq: torch.Tensor) -> torch.Tensor:
        """[global, per group] ``cos(Δw_k, -g_{k+1})`` on the device (NaN where a norm is 0)."""
        grads = self._grads()
        dots = torch.stack(
            [
                torch.vdot(g.reshape(-1), d.reshape(-1).to(g.dtype)).to(self._device)
                if g.shape == d.shape
                else torch.zeros((), device=self._device)
                for g, d in zip(grads, step, strict=True)
            ]
        ).to(torch.float64)
        n = len(self._groups)

        def per_group(v: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(n, device=self._device, dtype=torch.float64)
            return torch.cat([v.sum().reshape(1), out.index_add_(0, self._group_of, v)])

        den = (per_group(_sq_norms(grads, self._device)) * per_group(step_sq)).sqrt()
        return torch.where(den > 0, -per_group(dots) / den.clamp_min(1e-300), torch.nan)

    def _statistics(
        self, after: list[torch.Tensor], delta: torch.Tensor, grad_sq: torch.Tensor
    ) -> torch.Tensor:
        """[global grad norm, group grad norms, group ratios, layer ratios] on the device."""
        weight = _sq_norms(after, self._device)
        g = len(self._groups)
        gsq = torch.zeros(g, device=self._device, dtype=torch.float64)
        gsq.index_add_(0, self._group_of, grad_sq)
        parts = [gsq.sum().sqrt().reshape(1), gsq.sqrt(), _ratio(delta, weight, self._group_of, g)]
        if self._layers:
            keep = self._layer_keep
            parts.append(_ratio(delta[keep], weight[keep], self._layer_of, len(self._layers)))
        return torch.cat(parts)

    # ------------------------------------------------------------------ reading back
    def flush(self) -> None:
        """Read the recorded values from the device (one transfer) and write them out."""
        first = self.step - len(self._hrows)
        g, n_layers = len(self._groups), len(self._layers)
        rows = [{"step": float(first + i), **h} for i, h in enumerate(self._hrows)]
        if self._losses:
            vals = [v for _, v in self._losses]
            host = _to_host(vals)
            for (k, _), v in zip(self._losses, host, strict=True):
                if first <= k < first + len(rows):
                    rows[k - first]["loss"] = v
                else:  # a late loss for an update already written: its own row
                    rows.append({"step": float(k), "loss": v})
        if self._stats:
            mat = torch.stack([s for _, s in self._stats]).cpu().tolist()
            for (k, _), vec in zip(self._stats, mat, strict=True):
                if not first <= k < first + len(rows):
                    continue
                r = rows[k - first]
                r["grad_norm"] = _inf_if_nan(vec[0])
                if g > 1:
                    for i, name in enumerate(self._groups):
                        r[f"grad_norm/{name}"] = _inf_if_nan(vec[1 + i])
                for i, name in enumerate(self._groups):
                    r[f"group_ratio/{name}"] = vec[1 + g + i]
                for i, name in enumerate(self._layers):
                    if i < n_layers:
                        r[f"ratio/{name}"] = vec[1 + 2 * g + i]
        if self._align:
            cos = torch.stack([a for _, a in self._align]).cpu().tolist()
            for (k, _), vec in zip(self._align, cos, strict=True):
                if first <= k < first + len(rows):
                    r = rows[k - first]
                    r["grad_update_cos"] = vec[0]
                    if g > 1:
                        for i, name in enumerate(self._groups):
                            r[f"grad_update_cos/{name}"] = vec[1 + i]
        self._hrows, self._losses, self._stats, self._align = [], [], [], []
        self._emit(sorted(rows, key=lambda r: r["step"]))

    def _emit(self, rows: list[dict[str, float]]) -> None:
        if not rows:
            return
        for r in rows:
            r["step"] = int(r["step"])
        self._rows += rows
        if self._writer is not None:
            self._writer.write(rows)
        if self._tb is not None:
            for r in rows:
                for key, v in r.items():
                    if key != "step" and math.isfinite(v):
                        self._tb.add_scalar(key, v, r["step"])
            self._tb.flush()

    def rows(self) -> list[dict[str, float]]:
        """Every row recorded so far, as written to the log file (flushes first)."""
        self.flush()
        return [dict(r) for r in self._rows]

    def run_log(self) -> RunLog:
        """Everything recorded so far, as a :class:`lrkit.diagnostics.RunLog`.

        Raises:
            ValueError: no training loss was logged yet.
        """
        self.flush()
        return RunLog.from_rows(self._rows)

    def diagnose(self, **kwargs: Any) -> list[Finding]:
        """:func:`lrkit.diagnostics.diagnose` on :meth:`run_log` (same keyword arguments)."""
        return diagnose(self.run_log(), **kwargs)

    def close(self) -> None:
        """Flush, close the files and remove the hooks (also run at interpreter exit)."""
        if not self._hooks:
            return
        self.flush()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._writer is not None:
            self._writer.close()
        if self._tb is not None and self._own_tb:
            self._tb.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- helpers
def _call(ref: Any, method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()


def _has(group: dict[str, Any], key: str) -> bool:
    return _get(group, key) is not None


def _get(group: dict[str, Any], key: str) -> float | None:
    if key in ("momentum", "beta1") and "momentum" not in group and "betas" in group:
        return float(group["betas"][0])
    if key == "beta2" and "betas" in group:
        return float(group["betas"][1])
    v = group.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    return None


def _sq_norms(tensors: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Squared L2 norm of each tensor, as one float64 vector on ``device`` (no host sync)."""
    norms = torch._foreach_norm(list(tensors))
    if all(n.device == device for n in norms):
        return torch.stack(norms).to(torch.float64).square()
    return torch.stack([n.to(device, torch.float64) for n in norms]).square()


def _ratio(delta: torch.Tensor, weight: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """``sqrt(sum delta) / sqrt(sum weight)`` per bucket of ``index`` (0 where no weight)."""
    d = torch.zeros(n, device=delta.device, dtype=torch.float64).index_add_(0, index, delta)
    w = torch.zeros(n, device=delta.device, dtype=torch.float64).index_add_(0, index, weight)
    return torch.where(w > 0, d.sqrt() / w.sqrt().clamp_min(1e-300), torch.zeros_like(w))


def _to_host(values: list[Any]) -> list[float]:
    """The losses as floats: every tensor read in one transfer (stacked on its device)."""
    tensors = [v.reshape(()) for v in values if isinstance(v, torch.Tensor)]
    read: Any = iter(())
    if tensors:
        try:
            read = iter(torch.stack(tensors).to(torch.float64).cpu().tolist())
        except RuntimeError:  # losses on several devices or dtypes: one transfer each
            read = iter([float(t) for t in tensors])
    return [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values]


def _inf_if_nan(v: float) -> float:
    return math.inf if not math.isfinite(v) else v


def _tensorboard(tb: Any) -> tuple[Any, bool]:
    if tb is None:
        return None, False
    if isinstance(tb, (str, os.PathLike)):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=os.fspath(tb)), True
    if not hasattr(tb, "add_scalar"):
        raise TypeError(
            f"Monitor: tensorboard must be a folder or a SummaryWriter, got {type(tb).__name__}"
        )
    return tb, False
