"""Array namespaces: each family writes its formula once, as a function of ``(t, xp)``.

``xp`` is the module of array functions for the steps' array type: ``numpy`` itself for numpy
arrays and Python numbers (no extra dependency; what numpy computes today, bit for bit), or the
array API namespace of a torch tensor or a JAX array, found by ``array_api_compat``
(``pip install lrkit[array]``). A formula uses only functions both provide (``xp.cos``,
``xp.minimum``, ``xp.where``, ``xp.clip``, ...) and Python operators.

Where a schedule is made of pieces (a warmup then a decay, the phases of WSD or one-cycle), the
numpy path writes each piece in place through a slice or a mask (no wasted work); other
namespaces compute every piece over all steps and pick with ``xp.where``: no data-dependent
shapes and no host sync, so the evaluation stays on the device, traces under ``jax.jit`` and
compiles with ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from collections.abc import Sequence as Seq
from typing import Any

import numpy as np

from lrkit.schedules._errors import ScheduleTypeError

#: Type of a namespace: ``numpy`` or an array API namespace module.
Namespace = Any
#: A selection of steps: a slice or a boolean mask (numpy), or a boolean array.
Where = Any


def namespace(t: object) -> Namespace | None:
    """The array API namespace of ``t`` when it is a non-numpy array (torch, JAX, ...), else None.

    Found by ``array_api_compat``; without it, an array that carries its own namespace
    (``__array_namespace__``, as JAX arrays do) still works.

    Raises:
        TypeError: ``t`` is such an array but ``array_api_compat`` is not installed.
    """
    if isinstance(t, np.ndarray) or not hasattr(t, "__dlpack__"):
        return None
    if type(t).__module__ == "torch" and type(t).__name__ in ("Tensor", "Parameter"):
        return _torch_namespace()
    try:
        import array_api_compat
    except ImportError:
        if hasattr(t, "__array_namespace__"):  # JAX arrays carry their own namespace
            return t.__array_namespace__()
        raise ScheduleTypeError(
            f"schedule: evaluating on a {type(t).__module__}.{type(t).__name__} needs "
            "array_api_compat: pip install 'lrkit[array]'"
        ) from None
    if not array_api_compat.is_array_api_obj(t) or array_api_compat.is_numpy_array(t):
        return None
    return array_api_compat.array_namespace(t)


def is_numpy(xp: Namespace) -> bool:
    """True for the numpy path (slices and in-place writes allowed)."""
    return xp is np


def default_float(xp: Namespace) -> Any:
    """The namespace's default real floating dtype (torch: ``torch.get_default_dtype()``,
    JAX: float32 unless x64 is enabled): integer steps become it, as ``t * 1.0`` would."""
    if isinstance(xp, _TorchNamespace):
        return xp.get_default_dtype()
    return xp.__array_namespace_info__().default_dtypes()["real floating"]


def errstate(xp: Namespace, **kwargs: Any) -> contextlib.AbstractContextManager[Any]:
    """``np.errstate(**kwargs)`` on numpy; nothing elsewhere (no floating-point warnings)."""
    return np.errstate(**kwargs) if xp is np else contextlib.nullcontext()


def empty(xp: Namespace, t: Any) -> Any:
    """An array like ``t`` to fill piece by piece."""
    return np.empty(t.shape) if xp is np else xp.zeros_like(t)


def put(xp: Namespace, out: Any, where: Where, fn: Callable[[Any], Any], t: Any) -> Any:
    """``out`` with ``fn(t)`` written at the selected steps.

    numpy: ``out[where] = fn(t[where])`` in place; elsewhere ``where(mask, fn(t), out)``.
    """
    if xp is np:
        out[where] = fn(t[where])
        return out
    return xp.where(where, fn(t), out)


def put_value(xp: Namespace, out: Any, where: Where, value: float) -> Any:
    """``out`` with ``value`` at the selected steps."""
    if xp is np:
        out[where] = value
        return out
    return xp.where(where, value, out)


def floor_div(xp: Namespace, t: Any, d: float) -> Any:
    """``floor(t / d)``. Off numpy it is corrected by one where rounding put it on the wrong
    side of a multiple of ``d`` (float32, or XLA computing ``t * (1 / d)``)."""
    q = xp.floor(t / d)
    if xp is np:
        return q
    return q + as_float(xp, t >= (q + 1.0) * d, t) - as_float(xp, t < q * d, t)


def power(xp: Namespace, base: float, p: Any) -> Any:
    """``base ** p`` for a number ``base > 0``. Off numpy as ``exp(p * log(base))`` with the
    log taken in float64: a float32 ``base`` (0.99999 rounded) would be off by ``p`` ulps."""
    return base**p if xp is np else xp.exp(p * math.log(base))


def finite_cap(xp: Namespace, t: Any, value: float) -> float:
    """``value`` limited to the largest finite number of ``t``'s dtype (a float32 array
    cannot hold the float64 caps some formulas use)."""
    return value if xp is np else min(value, float(xp.finfo(t.dtype).max))


def as_float(xp: Namespace, mask: Any, like: Any) -> Any:
    """A boolean array as 0.0 / 1.0 in the dtype of ``like``."""
    return mask if xp is np else xp.astype(mask, like.dtype)


def pieces(t: Any, starts: Seq[float], xp: Namespace = np) -> list[Where | None]:
    """Where each piece ``[starts[k], starts[k+1])`` lies in ``t`` (the last piece is open).

    numpy: per piece, a slice when ``t`` is sorted (the common case: a range of steps; no
    copies), a boolean mask otherwise, or None when no step falls in the piece. Other
    namespaces: a boolean array per piece (never None: that would need a host sync).
    """
    if xp is not np:
        return list(_masks(xp, t, starts))
    inner = np.asarray(starts[1:], dtype=np.float64)
    if t.size < 2 or bool((t[1:] >= t[:-1]).all()):
        cuts = [0, *np.searchsorted(t, inner, side="left").tolist(), t.size]
        return [slice(a, b) if b > a else None for a, b in itertools.pairwise(cuts)]
    idx = np.searchsorted(inner, t, side="right")
    out: list[Where | None] = []
    for k in range(len(starts)):
        mask = idx == k
        out.append(mask if mask.any() else None)
    return out


def _masks(xp: Namespace, t: Any, starts: Seq[float]) -> Iterator[Any]:
    for k, start in enumerate(starts):
        mask = t >= float(start) if k > 0 else None
        if k + 1 < len(starts):
            below = t < float(starts[k + 1])
            mask = below if mask is None else mask & below
        yield mask if mask is not None else xp.ones_like(t, dtype=xp.bool)


def lookup(xp: Namespace, t: Any, bounds: Seq[float], values: Seq[float]) -> Any:
    """``values[#{b in bounds: b <= t}]`` without an index array: a chain of ``where``."""
    out = xp.full_like(t, values[0])
    for b, v in zip(bounds, values[1:], strict=True):
        out = xp.where(t >= float(b), v, out)
    return out


class _TorchNamespace:
    """The array functions the formulas use, on torch tensors, written with torch's own ops.

    ``array_api_compat``'s torch wrappers turn Python scalars into tensors through
    ``torch.result_type``, which ``torch.compile(fullgraph=True)`` cannot trace; torch's
    ``clamp``, ``where`` and ``remainder`` take the scalars directly. Attributes not defined
    here (``cos``, ``floor``, ``sqrt``, ``exp``, ``log1p``, ``isfinite``, ``zeros_like``, ...)
    are torch's own functions, which follow the array API for these uses.
    """

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def minimum(self, x: Any, y: Any) -> Any:
        t = self._torch
        return t.minimum(x, y) if isinstance(y, t.Tensor) else t.clamp(x, max=y)

    def maximum(self, x: Any, y: Any) -> Any:
        t = self._torch
        return t.maximum(x, y) if isinstance(y, t.Tensor) else t.clamp(x, min=y)

    def clip(self, x: Any, low: Any = None, high: Any = None) -> Any:
        return self._torch.clamp(x, low, high)

    def astype(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def isdtype(self, dtype: Any, kind: str) -> bool:
        if kind == "real floating":
            return bool(dtype.is_floating_point)
        if kind == "integral":
            return not (dtype.is_floating_point or dtype.is_complex or dtype == self._torch.bool)
        raise ValueError(f"isdtype: unsupported kind {kind!r}")


_TORCH: list[_TorchNamespace] = []


def _torch_namespace() -> _TorchNamespace:
    if not _TORCH:
        _TORCH.append(_TorchNamespace())
    return _TORCH[0]
