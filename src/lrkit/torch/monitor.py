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
values it used). On sampled updates it also measures: the gradient norm (global and per
group) before the update, and the update-to-weight ratio
``||w_after - w_before|| / ||w_after||`` per group and per layer (a module owning parameters),
which needs a copy of the weights for that update (turned into the step in place and kept
until the next update); and at the next update, the cosine
between that update and the new descent direction, ``cos(Δw_k, -g_{k+1})`` (global and per
group): positive when the loss still falls along the step just taken (a longer step would
have gone further), negative when the step overshot. The sampling interval grows with the
update count, ``min(every, max(1, k // 25))`` after a sampled update ``k``: every update of the
first 50, then sparser, every ``every`` from update ``25 * every`` on. A run's start, where
most happens, is seen in detail, a short run still gets enough samples to judge (about 17 per
doubling of its length, 25 ln 2), and a long one costs what ``every`` costs. Nothing is read back to
the host per step: the device keeps only the losses and, per parameter tensor, norms and dot
products (a few ``torch._foreach_*`` calls per sampled update); they are read every ``every``
updates (at the next update's pre-hook, once the last loss has been logged; one transfer for
the losses, one for each kind of statistic), the sums per group and layer, ratios and cosines
computed on the host (:mod:`lrkit.torch._monitor_stats`), and the rows appended (and
flushed) to the log file and TensorBoard.
"""

from __future__ import annotations

import atexit
import math
import os
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lrkit.diagnostics import Finding, RunLog, diagnose
from lrkit.diagnostics.io import LogWriter
from lrkit.torch._monitor_stats import Buckets, cosines, statistics

__all__ = ["Monitor"]

_DEFAULT_HPARAMS = ("lr", "momentum")
#: After a sampled update ``k`` the next is ``min(every, max(1, k // _GROWTH))`` later: the
#: first updates are all sampled (a blow-up there is seen before it settles), about 17 per
#: doubling of the run after that (25 ln 2), and every ``every`` from ``_GROWTH * every`` on.
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
        cosine: record ``grad_update_cos``; it keeps the last sampled update ``w_k - w_{k+1}``
            (one copy of the parameters) until the next update's gradient is there, i.e.
            through that update's forward and backward pass; ``False`` frees it at once.

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
        cosine: bool = True,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"Monitor: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"Monitor: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Monitor: every must be a positive integer, got every={every!r}")
        self.model, self.optimizer, self.every, self.cosine = model, optimizer, every, cosine
        self._groups = [str(g.get("name", i)) for i, g in enumerate(optimizer.param_groups)]
        self._hkeys = [h for h in hyperparameters if _has(optimizer.param_groups[0], h)]
        self._hcols = [
            (h, gi, self._hname(h, gi)) for h in self._hkeys for gi in range(len(self._groups))
        ]
        self._index_params(layers)
        self.step = 0  # updates made
        self._next_sample = 0  # the next update whose statistics are measured
        self._warned_groups = False  # a param group was added after the Monitor was made
        self._rows: list[dict[str, float]] = []
        self._hrows: list[dict[str, float]] = []  # rows of the unread updates: step, hparams
        self._losses: list[tuple[int, Any]] = []  # (update, loss tensor/float), unread
        # unread per-parameter measurements (update, vector): norms of the gradient, update and
        # weights; for the cosine, gradient norms, dot products and update norms
        self._stats: list[tuple[int, torch.Tensor]] = []
        self._align: list[tuple[int, torch.Tensor]] = []
        self._pending: Any = None
        self._pending_n = 0
        self._log_after: bool | None = None  # log() after optimizer.step(); None: not known yet
        self._last_logged = -1  # the last update given a loss (log() after the step)
        self._grad_norms: Sequence[torch.Tensor] | None = None  # of a sampled update, pre-step
        self._before: list[torch.Tensor] | None = None  # its weights before the step
        # the last sampled update k: (k, w_k - w_{k+1}, its norms), for the next one's cosine
        self._delta: tuple[int, list[torch.Tensor], Sequence[torch.Tensor]] | None = None
        self._writer = None if path is None else LogWriter(path, self._columns(val_metrics))
        self._tb, self._own_tb = _tensorboard(tensorboard)
        ref = weakref.ref(self)
        self._hooks = [
            optimizer.register_step_pre_hook(_weak_call(ref, type(self)._pre)),
            optimizer.register_step_post_hook(_weak_call(ref, type(self)._post)),
        ]
        atexit.register(_weak_call(ref, type(self).close))

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
        self._device = self._params[0].device if self._params else torch.device("cpu")
        n, n_layers = len(self._groups), len(self._layers)
        self._buckets = Buckets(group_of, layer_of, n, n_layers)
        # the recorded columns of statistics() and cosines() (one group: only the totals)
        groups = self._groups if n > 1 else []
        self._stat_columns = [
            "grad_norm",
            *(f"grad_norm/{g}" for g in groups),
            *(f"group_ratio/{g}" for g in self._groups),
            *(f"ratio/{name}" for name in self._layers),
        ]
        self._stat_index = [0, *range(1, len(groups) + 1), *range(n + 1, 2 * n + n_layers + 1)]
        self._cos_columns = ["grad_update_cos", *(f"grad_update_cos/{g}" for g in groups)]
        # the descent direction is -g, or +g in a group that maximises: the dots' signs
        self._dot_sign = [
            -1.0 if g.get("maximize", False) else 1.0
            for g in self.optimizer.param_groups
            for _ in g["params"]
        ]

    def _hname(self, key: str, gi: int) -> str:
        return key if len(self._groups) == 1 else f"{key}/{self._groups[gi]}"

    def _columns(self, val_metrics: Sequence[str]) -> list[str]:
        cols = ["step", "loss"]
        cols += [self._hname(h, gi) for h in self._hkeys for gi in range(len(self._groups))]
        cols.append("grad_norm")
        if len(self._groups) > 1:
            cols += [f"grad_norm/{g}" for g in self._groups]
        if self.cosine:
            cols.append("grad_update_cos")
        if self.cosine and len(self._groups) > 1:
            cols += [f"grad_update_cos/{g}" for g in self._groups]
        cols += [f"group_ratio/{g}" for g in self._groups]
        cols += [f"ratio/{name}" for name in self._layers]
        cols += [m if m.startswith("val_") else f"val_{m}" for m in val_metrics]
        return cols

    # ------------------------------------------------------------------ the loop's calls
    def log(self, loss: torch.Tensor | float) -> None:
        """Record the training loss of the current update: call it once per step, before or
        after ``optimizer.step()`` (which, is read from the first update: a loss logged before
        it means before). Before: several calls before one update, e.g. per micro-batch, are
        averaged. After: a call with no update since the previous one belongs to a step that
        was skipped (``GradScaler``) and is dropped, so later losses keep their rows. No host
        sync: a tensor stays on its device until the next read."""
        value = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        if self._log_after:
            k = self.step - 1
            if k > self._last_logged:
                self._losses.append((k, value))
                self._last_logged = k
            return
        self._pending = value if self._pending is None else self._pending + value
        self._pending_n += 1

    def log_val(self, **metrics: float) -> None:
        """Record validation metrics at the last update (``log_val(val_loss=0.31, acc=0.9)``;
        names get a ``val_`` prefix unless they have one); written at once."""
        if not metrics:
            raise ValueError("Monitor.log_val: give at least one metric, e.g. val_loss=...")
        if not self._hooks:
            raise RuntimeError("Monitor.log_val: the monitor is closed; log before close()")
        self.flush()
        row: dict[str, float] = {"step": max(0, self.step - 1)}
        for k, v in metrics.items():
            row[k if k.startswith("val_") else f"val_{k}"] = float(v)
        self._emit([row])

    # ------------------------------------------------------------------ hooks
    def _pre(self) -> None:
        k = self.step
        if len(self.optimizer.param_groups) != len(self._groups) and not self._warned_groups:
            self._warned_groups = True
            warnings.warn(
                f"Monitor: the optimizer has {len(self.optimizer.param_groups)} param groups, "
                f"{len(self._groups)} when the Monitor was made; the new ones are not recorded "
                "(make the Monitor after add_param_group)",
                stacklevel=2,
            )
        grad_norms = None  # this update's gradient norms per parameter, once measured
        if self._delta is not None:
            grad_norms = self._measure_cosine(*self._delta)
            self._delta = None
        if k and k % self.every == 0:
            self.flush()  # updates < k, their losses logged before or after their step
        if self._log_after is None:  # the first update: was its loss logged before it?
            self._log_after = self._pending is None
        if self._pending is not None:
            v = self._pending / self._pending_n if self._pending_n > 1 else self._pending
            self._losses.append((k, v))
            self._pending, self._pending_n = None, 0
        groups = self.optimizer.param_groups
        row: dict[str, Any] = {"step": k}  # tensor hyperparameters stay on device till flush
        for key, gi, column in self._hcols:
            if gi < len(groups):
                v = _get(groups[gi], key)
                if v is not None:
                    row[column] = v
        self._hrows.append(row)
        if k >= self._next_sample and self._params:
            self._next_sample = k + min(self.every, max(1, k // _GROWTH))
            with torch.no_grad():
                if grad_norms is None:
                    grad_norms = torch._foreach_norm(self._grads())
                self._grad_norms = grad_norms
                self._before = [p.clone() for p in self._params]

    def _post(self) -> None:
        k = self.step
        if self._before is not None and self._grad_norms is not None:
            back = self._before  # the weights before the update, made w_k - w_{k+1} in place
            with torch.no_grad():
                torch._foreach_sub_(back, self._params)
                norms = torch._foreach_norm([*back, *self._params])
                self._stats.append((k, self._stack([*self._grad_norms, *norms])))
            if self.cosine:
                self._delta = (k, back, norms[: len(back)])
            self._before, self._grad_norms = None, None
        self.step = k + 1

    def _measure_cosine(
        self, k: int, back: list[torch.Tensor], step_norms: Sequence[torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        """Record the per-parameter parts of ``cos(Δw_k, -g_{k+1})`` (``||g_{k+1}||``,
        ``g_{k+1} · (w_k - w_{k+1})``, ``||w_k - w_{k+1}||``); return the gradient norms."""
        with torch.no_grad():
            grads = self._grads()
            norms = torch._foreach_norm(grads)
            dots = [
                torch.vdot(g.reshape(-1), b.reshape(-1)) if g.shape == b.shape else g.new_zeros(())
                for g, b in zip(grads, back, strict=True)
            ]
            self._align.append((k, self._stack([*norms, *dots, *step_norms])))
        return norms

    def _grads(self) -> list[torch.Tensor]:
        """Each parameter's gradient (0 where none; a sparse one, as from
        ``nn.Embedding(sparse=True)``, made dense for its norm and dot product)."""
        return [
            p.new_zeros(()) if p.grad is None else p.grad.to_dense() if p.grad.is_sparse else p.grad
            for p in self._params
        ]

    def _stack(self, scalars: list[torch.Tensor]) -> torch.Tensor:
        """0-d tensors as one vector on their device (no host sync)."""
        try:
            return torch.stack(scalars)
        except RuntimeError:  # parameters on several devices: gathered on the first one's
            return torch.stack([s.to(self._device) for s in scalars])

    # ------------------------------------------------------------------ reading back
    def flush(self) -> None:
        """Read the recorded values from the device (one transfer each) and write them out."""
        rows, first = self._hrows, self.step - len(self._hrows)
        end, late = first + len(rows), []
        if self._losses:
            host = _to_host([v for _, v in self._losses])
            for (k, _), v in zip(self._losses, host, strict=True):
                if first <= k < end:
                    rows[k - first]["loss"] = v
                else:  # a late loss for an update already written: its own row
                    late.append({"step": k, "loss": v})
        if self._stats:
            for (k, _), norms in zip(self._stats, _read(self._stats), strict=True):
                if first <= k < end:
                    stats = statistics(norms, self._buckets)
                    stats = [stats[i] for i in self._stat_index]
                    rows[k - first].update(zip(self._stat_columns, stats, strict=True))
        if self._align:
            n = len(self._cos_columns)
            for (k, _), parts in zip(self._align, _read(self._align), strict=True):
                cos = dict(
                    zip(
                        self._cos_columns,
                        cosines(parts, self._buckets, self._dot_sign)[:n],
                        strict=True,
                    )
                )
                if first <= k < end:
                    rows[k - first].update(cos)
                else:  # its update was written by a read in between (log_val, rows): own row
                    late.append({"step": k, **cos})
        cells = [(r, c) for r in rows for c, v in r.items() if _is_t(v)]
        if cells:  # tensor rates (or betas) read in one transfer, like the losses
            for (r, c), v in zip(cells, _to_host([r[c] for r, c in cells]), strict=True):
                r[c] = v
        self._hrows, self._losses, self._stats, self._align = [], [], [], []
        self._emit(sorted(late + rows, key=lambda r: r["step"]) if late else rows)

    def _emit(self, rows: list[dict[str, float]]) -> None:
        if not rows:
            return
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
        self._delta = self._before = self._grad_norms = None  # the parameter copies
        if self._writer is not None:
            self._writer.close()
        if self._tb is not None and self._own_tb:
            self._tb.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- helpers
def _weak_call(ref: weakref.ref[Monitor], method: Callable[[Monitor], None]) -> Callable[..., None]:
    """A hook calling ``method`` on the monitor while it exists (the optimizer and the
    interpreter's exit do not keep it alive)."""

    def call(*_: object) -> None:
        monitor = ref()
        if monitor is not None:
            method(monitor)

    return call


def _has(group: dict[str, Any], key: str) -> bool:
    return _get(group, key) is not None


def _get(group: dict[str, Any], key: str) -> float | torch.Tensor | None:
    """The group's value of ``key`` (``momentum``/``beta1`` and ``beta2`` from ``betas``): a
    float, or a copy of a one-element tensor kept on its device (read at the next flush, so a
    tensor rate on a GPU costs no host sync per update); None when absent or not a scalar."""
    if key in ("momentum", "beta1") and "momentum" not in group and "betas" in group:
        return _scalar(group["betas"][0])
    if key == "beta2" and "betas" in group:
        return _scalar(group["betas"][1])
    return _scalar(group.get(key))


def _is_t(v: Any) -> bool:
    return isinstance(v, torch.Tensor)


def _scalar(v: Any) -> float | torch.Tensor | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.detach().reshape(()).clone()
    return None


def _read(measured: list[tuple[int, torch.Tensor]]) -> list[list[float]]:
    """The measured vectors as floats, read in one transfer."""
    return torch.stack([v for _, v in measured]).tolist()


def _to_host(values: list[Any]) -> list[float]:
    """The losses as floats: every tensor read in one transfer (stacked on its device)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    read: Any = iter(())
    if tensors:
        try:
            read = iter(torch.stack(tensors).reshape(len(tensors)).tolist())
        except RuntimeError:  # losses of several shapes or devices: one transfer each
            read = iter([float(t) for t in tensors])
    return [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values]


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
