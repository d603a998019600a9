"""The optimizer's param groups built from a model: by name patterns or by depth (layer-wise decay).

:func:`param_groups` returns plain dicts, ready for ``torch.optim.AdamW(groups, lr=...)``. Every
group has a ``"name"`` (``"blocks.3"``, ``"head"``, ``"blocks.3.no_decay"``), a ``"block"`` (the
name shared by a block's decay and no-decay groups) and an ``"lr_mult"`` that
:class:`lrkit.torch.Scheduler` multiplies into the scheduled rate; ``Scheduler(group_mult=...)``
and :class:`lrkit.torch.Unfreeze` refer to groups by either name. :func:`describe_groups` prints the
table of groups.

Depth (``layer_decay=d``): the parameters are cut into levels, in depth order, ``stem`` (what
comes before the first block: embeddings), each block, then ``head`` (what comes after the last
block: final norm, classifier). The top level gets ``lr_mult = 1`` and each level below it ``d``
times the one above: level ``i`` of ``L`` levels gets ``d ** (L - 1 - i)`` (as in BEiT and
ELECTRA's layer-wise decay). Blocks are found from the module tree (see :func:`find_blocks`) or
given as ``blocks=``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import torch
from torch import nn

from lrkit.tools.tables import text_table

__all__ = ["describe_groups", "find_blocks", "param_groups"]

_OWNER = "param_groups"

#: Modules whose weights are normalisation scales (no weight decay).
_NORMS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)

BlockSpec = Sequence[str] | Callable[[str], str]


def param_groups(
    model: nn.Module,
    mults: Mapping[str, float] | None = None,
    *,
    layer_decay: float | None = None,
    blocks: BlockSpec | None = None,
    weight_decay: float | None = None,
    no_decay: Sequence[str] = (),
    lr: float | None = None,
) -> list[dict[str, Any]]:
    """Param groups for ``model``: named, with lr multipliers and no weight decay on norms/biases.

    Three ways to cut the model (trainable parameters only; frozen ones are left out):

    * ``mults={"backbone.*": 0.1, "head.*": 1.0}``: one group per pattern (``fnmatch`` on the
      parameter's name), named after the pattern less a trailing ``.*``, with that ``lr_mult``.
      Every parameter must match exactly one pattern.
    * ``layer_decay=d``: one group per level (``stem``, each block, ``head``) with
      ``lr_mult = d ** (levels above it)``: the top level x1, the one below x d, ...
    * neither: one group per level, all with ``lr_mult = 1`` (named groups for
      :class:`Unfreeze` or ``group_mult``).

    With ``weight_decay`` given, each group is split in two: ``name`` with that
    ``weight_decay``, ``name + ".no_decay"`` with ``0.0`` for biases, parameters with fewer than
    two dimensions, weights of normalisation layers and names matching ``no_decay`` patterns.

    Args:
        model: the model.
        mults: lr multiplier by parameter-name pattern.
        layer_decay: the ratio in (0, 1] between a level's multiplier and the one above.
        blocks: the blocks in depth order, as module-name prefixes (``["encoder.layers.0",
            ...]``) or a function from a parameter's name to its level's name (levels ordered
            by their first parameter); default :func:`find_blocks`.
        weight_decay: weight decay of the decay groups (None: no split, the optimizer's own).
        no_decay: extra name patterns kept out of weight decay (``["*pos_embed", "cls_token"]``).
        lr: if given, each group's ``"lr"`` is set to ``lr * lr_mult`` (for use without
            :class:`lrkit.torch.Scheduler`, which applies ``lr_mult`` itself).

    Returns:
        A list of dicts with keys ``params``, ``name``, ``block``, ``lr_mult`` (and
        ``weight_decay``, ``lr`` when given), stem first, head last.

    Raises:
        TypeError: ``model`` not a module, bad types.
        ValueError: both ``mults`` and ``layer_decay``; a pattern matching no parameter; a
            parameter matched by two patterns or by none; ``layer_decay`` outside (0, 1]; block
            prefixes that match nothing or overlap; a model without trainable parameters.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> [(g["name"], g["lr_mult"]) for g in param_groups(model, layer_decay=0.5)]
    [('0', 0.5), ('2', 1.0)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_OWNER}: model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"{_OWNER}: the model has no trainable parameters")
    wd = None if weight_decay is None else _number("weight_decay", weight_decay)
    base_lr = None if lr is None else _number("lr", lr)
    patterns = _patterns("no_decay", no_decay)
    if mults is not None and layer_decay is not None:
        raise ValueError(
            f"{_OWNER}: give mults or layer_decay, not both, got mults={dict(mults)!r}, "
            f"layer_decay={layer_decay!r}"
        )
    if mults is not None:
        if blocks is not None:
            raise ValueError(f"{_OWNER}: blocks= cuts by depth; with mults= give patterns only")
        levels = _by_pattern(named, mults)
    else:
        decay = 1.0 if layer_decay is None else _decay(layer_decay)
        order = _levels(model, named, blocks)
        top = len(order) - 1
        levels = [(name, decay ** (top - i), ps) for i, (name, ps) in enumerate(order)]
    skip = _no_decay_names(model, named, patterns) if wd is not None else set()
    out: list[dict[str, Any]] = []
    for name, mult, ps in levels:
        parts = [(name, [p for n, p in ps if n not in skip], wd)]
        if wd is not None:
            parts.append((f"{name}.no_decay", [p for n, p in ps if n in skip], 0.0))
        for gname, params, gwd in parts:
            if not params:
                continue
            group: dict[str, Any] = {"params": params, "name": gname, "block": name}
            group["lr_mult"] = float(mult)
            if gwd is not None:
                group["weight_decay"] = gwd
            if base_lr is not None:
                group["lr"] = base_lr * mult
            out.append(group)
    return out


def find_blocks(model: nn.Module) -> list[str]:
    """The model's blocks in depth order, as module names, found from its layout.

    A *stack* is an ``nn.ModuleList`` (or an ``nn.Sequential`` with two or more children with
    parameters) whose children with parameters are modules of one class that have submodules of their own (transformer layers,
    residual blocks): ``blocks.N``, ``layers.N``, ``h.N``, ``encoder.layers.N`` then
    ``decoder.layers.N``, ``layer1.N`` ... ``layer4.N``. The outermost stacks are taken, in
    registration order; their children are the blocks. Without any stack (a plain
    ``nn.Sequential`` CNN), the model's own children with parameters are the blocks.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    >>> find_blocks(net)
    ['0', '2']
    """
    stacks: list[str] = []
    found: list[str] = []
    for name, module in model.named_modules():
        if any(s == "" or name.startswith(s + ".") for s in stacks):
            continue
        if _is_stack(module):
            stacks.append(name)
            found += [_join(name, c) for c, m in module.named_children() if _has_params(m)]
    if found:
        return found
    return [c for c, m in model.named_children() if _has_params(m)]


def describe_groups(groups: Sequence[Mapping[str, Any]] | torch.optim.Optimizer) -> str:
    """A text table of param groups: name, tensors, parameters, lr multiplier, weight decay.

    Takes the list :func:`param_groups` returns or an optimizer (its ``param_groups``); ``-``
    where a group has no such key.
    """
    if isinstance(groups, torch.optim.Optimizer):
        groups = groups.param_groups
    rows = []
    for i, g in enumerate(groups):
        params = list(g["params"])
        rows.append(
            [
                g.get("name", f"group {i}"),
                len(params),
                sum(p.numel() for p in params),
                _fmt(g.get("lr_mult", 1.0)),
                _fmt(g.get("weight_decay")),
            ]
        )
    return text_table(["group", "tensors", "params", "lr_mult", "weight_decay"], rows)


# --------------------------------------------------------------------------- helpers
Named = list[tuple[str, nn.Parameter]]


def _by_pattern(named: Named, mults: Mapping[str, float]) -> list[tuple[str, float, Named]]:
    if not isinstance(mults, Mapping) or not mults:
        raise TypeError(
            f"{_OWNER}: mults must be a non-empty dict of name pattern -> multiplier, got "
            f"mults={mults!r}"
        )
    hits: dict[str, Named] = {}
    for pattern, m in mults.items():
        if not isinstance(pattern, str):
            raise TypeError(f"{_OWNER}: mults keys must be name patterns, got {pattern!r}")
        _number(f"mults[{pattern!r}]", m)
        hits[pattern] = [(n, p) for n, p in named if fnmatch.fnmatchcase(n, pattern)]
        if not hits[pattern]:
            raise ValueError(
                f"{_OWNER}: mults pattern {pattern!r} matches no trainable parameter (names "
                f"look like {_sample(named)})"
            )
    owner: dict[str, str] = {}
    for pattern, ps in hits.items():
        for n, _ in ps:
            if n in owner:
                raise ValueError(
                    f"{_OWNER}: parameter {n!r} is matched by two mults patterns, "
                    f"{owner[n]!r} and {pattern!r}"
                )
            owner[n] = pattern
    left = [n for n, _ in named if n not in owner]
    if left:
        raise ValueError(
            f"{_OWNER}: {len(left)} parameter(s) match no mults pattern, e.g. {left[:3]}; add a "
            f"pattern for them"
        )
    return [(_pattern_name(k), float(mults[k]), ps) for k, ps in hits.items()]


def _levels(model: nn.Module, named: Named, blocks: BlockSpec | None) -> list[tuple[str, Named]]:
    """``(level name, parameters)`` in depth order: stem, blocks, head (empty ones dropped)."""
    if callable(blocks):
        out: dict[str, Named] = {}
        for n, p in named:
            level = blocks(n)
            if not isinstance(level, str):
                raise TypeError(f"{_OWNER}: blocks({n!r}) must return a str, got {level!r}")
            out.setdefault(level, []).append((n, p))
        return list(out.items())
    prefixes = find_blocks(model) if blocks is None else _patterns("blocks", blocks)
    if not prefixes:
        raise ValueError(
            f"{_OWNER}: found no blocks in {type(model).__name__}; pass blocks=[...] prefixes"
        )
    owned: dict[str, Named] = {b: [] for b in prefixes}
    seen_block = False  # stem/head by position among all parameters, frozen ones included
    trainable = {n for n, _ in named}
    stem: Named = []
    head: Named = []
    for n, p in model.named_parameters():
        mine = [b for b in prefixes if n == b or n.startswith(b + ".")]
        if len(mine) > 1:
            raise ValueError(
                f"{_OWNER}: parameter {n!r} is in two blocks, {mine[0]!r} and {mine[1]!r}"
            )
        seen_block = seen_block or bool(mine)
        if n not in trainable:
            continue
        if mine:
            owned[mine[0]].append((n, p))
        else:
            (head if seen_block else stem).append((n, p))
    if blocks is None:  # found blocks that are wholly frozen are left out
        owned = {b: ps for b, ps in owned.items() if ps}
    empty = [b for b, ps in owned.items() if not ps]
    if empty:
        raise ValueError(
            f"{_OWNER}: blocks {empty} hold no trainable parameter (names look like "
            f"{_sample(named)})"
        )
    taken = {name for name in owned}
    if (stem and "stem" in taken) or (head and "head" in taken):
        raise ValueError(f"{_OWNER}: a block is named 'stem' or 'head'; rename it in blocks=")
    return [("stem", stem)] * bool(stem) + list(owned.items()) + [("head", head)] * bool(head)


def _no_decay_names(model: nn.Module, named: Named, patterns: list[str]) -> set[str]:
    """Biases, parameters with < 2 dimensions, norm-layer weights, names matching ``patterns``."""
    out = {n for n, p in named if p.ndim < 2 or n.endswith("bias")}
    out |= {n for n, _ in named if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)}
    for mname, module in model.named_modules():
        if isinstance(module, _NORMS):
            out |= {_join(mname, n) for n, _ in module.named_parameters(recurse=False)}
    return out


def _is_stack(module: nn.Module) -> bool:
    if not isinstance(module, (nn.ModuleList, nn.Sequential)):
        return False
    kids = [m for m in module.children() if _has_params(m)]
    return (
        len(kids) >= (1 if isinstance(module, nn.ModuleList) else 2)
        and len({type(m) for m in kids}) == 1
        and any(True for _ in kids[0].children())
    )


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _pattern_name(pattern: str) -> str:
    return pattern[:-2] if pattern.endswith(".*") and len(pattern) > 2 else pattern


def _sample(named: Named) -> list[str]:
    return [n for n, _ in named[:3]]


def _patterns(name: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{_OWNER}: {name} must be a list of strings, got {name}={value!r}")
    if not all(isinstance(v, str) for v in value):
        raise TypeError(f"{_OWNER}: {name} must be a list of strings, got {name}={value!r}")
    return list(value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{_OWNER}: {name} must be a number, got {name}={value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{_OWNER}: {name} must be a finite number >= 0, got {name}={value!r}")
    return float(value)


def _decay(value: object) -> float:
    d = _number("layer_decay", value)
    if not 0 < d <= 1:
        raise ValueError(f"{_OWNER}: layer_decay must be in (0, 1], got layer_decay={value!r}")
    return d


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
