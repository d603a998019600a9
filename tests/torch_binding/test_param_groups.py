"""``lrkit.torch.param_groups``: groups by pattern and by depth, no-decay split, names, errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tests.torch_binding._finetune_models import TinyGPT, TinyTransformer, sequential_cnn
from torch import nn

import lrkit
from lrkit.torch import Scheduler, describe_groups, find_blocks, param_groups


def _names(model: nn.Module, group: dict) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _by_name(groups: list[dict]) -> dict[str, dict]:
    return {g["name"]: g for g in groups}


def test_find_blocks_common_layouts() -> None:
    """Blocks are found for blocks.N, h.N, a plain Sequential, and encoder then decoder stacks."""
    assert find_blocks(TinyTransformer()) == ["blocks.0", "blocks.1", "blocks.2"]
    assert find_blocks(TinyGPT()) == ["h.0", "h.1"]
    assert find_blocks(sequential_cnn()) == ["0", "1", "3", "7"]
    t = nn.Transformer(8, 2, 2, 1, 16, batch_first=True)
    assert find_blocks(t) == [
        "encoder.layers.0",
        "encoder.layers.1",
        "decoder.layers.0",
    ]


def test_layer_decay_transformer_contents_and_multipliers() -> None:
    """stem < blocks.0 < ... < head, each x0.5 of the one above; every parameter in one group."""
    model = TinyTransformer(depth=3)
    groups = param_groups(model, layer_decay=0.5)
    g = _by_name(groups)
    assert [x["name"] for x in groups] == ["stem", "blocks.0", "blocks.1", "blocks.2", "head"]
    assert [x["lr_mult"] for x in groups] == [0.0625, 0.125, 0.25, 0.5, 1.0]
    assert _names(model, g["stem"]) == {"embed.weight", "embed.bias"}
    assert _names(model, g["blocks.1"]) == {
        n for n, _ in model.named_parameters() if n.startswith("blocks.1.")
    }
    assert _names(model, g["head"]) == {"norm.weight", "norm.bias", "head.weight", "head.bias"}
    all_ids = [id(p) for x in groups for p in x["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in model.parameters())


def test_gpt_layout_and_no_decay_split() -> None:
    """GPT: embeddings in stem; biases, LayerNorm weights go to '.no_decay' groups with wd 0."""
    model = TinyGPT()
    g = _by_name(param_groups(model, layer_decay=0.8, weight_decay=0.1))
    assert set(g) == {"stem", "h.0", "h.0.no_decay", "h.1", "h.1.no_decay", "head", "head.no_decay"}
    assert _names(model, g["stem"]) == {"wte.weight", "wpe.weight"}
    assert _names(model, g["h.0.no_decay"]) == {
        "h.0.norm.weight",
        "h.0.norm.bias",
        "h.0.mlp.0.bias",
        "h.0.mlp.2.bias",
    }
    assert _names(model, g["h.0"]) == {"h.0.mlp.0.weight", "h.0.mlp.2.weight"}
    assert g["h.0"]["weight_decay"] == 0.1 and g["h.0.no_decay"]["weight_decay"] == 0.0
    assert g["h.0"]["block"] == g["h.0.no_decay"]["block"] == "h.0"
    assert g["h.0"]["lr_mult"] == g["h.0.no_decay"]["lr_mult"] == pytest.approx(0.64)
    assert _names(model, g["head"]) == {"lm_head.weight"}
    assert _names(model, g["head.no_decay"]) == {"ln_f.weight", "ln_f.bias"}


def test_sequential_cnn_batchnorm_weights_not_decayed() -> None:
    """Sequential CNN: one level per layer with parameters; BatchNorm weight and bias no decay."""
    model = sequential_cnn()
    g = _by_name(param_groups(model, layer_decay=0.5, weight_decay=0.01, no_decay=["0.weight"]))
    assert set(g) == {"0.no_decay", "1.no_decay", "3", "3.no_decay", "7", "7.no_decay"}
    assert _names(model, g["1.no_decay"]) == {"1.weight", "1.bias"}
    assert _names(model, g["0.no_decay"]) == {"0.weight", "0.bias"}  # by the extra pattern
    assert g["7"]["lr_mult"] == 1.0 and g["0.no_decay"]["lr_mult"] == 0.125


def test_patterns_with_multipliers_and_lr() -> None:
    """Pattern groups are named after the pattern less '.*' and get lr = lr * mult."""
    model = TinyTransformer()
    groups = param_groups(
        model, {"embed.*": 0.01, "blocks.*": 0.1, "norm.*": 1.0, "head.*": 1.0}, lr=0.5
    )
    g = _by_name(groups)
    assert list(g) == ["embed", "blocks", "norm", "head"]
    assert g["blocks"]["lr_mult"] == 0.1 and g["blocks"]["lr"] == pytest.approx(0.05)
    assert len(g["blocks"]["params"]) == len(list(model.blocks.parameters()))
    torch.optim.SGD(groups, lr=1.0)  # accepted as is by a torch optimizer


def test_errors_name_the_problem() -> None:
    """A pattern matching nothing, a parameter matched twice or by none, bad decay: errors."""
    model = TinyTransformer()
    with pytest.raises(ValueError, match=r"pattern 'backbone\.\*' matches no trainable"):
        param_groups(model, {"backbone.*": 0.1, "*": 1.0})
    with pytest.raises(ValueError, match=r"'head.weight' is matched by two mults patterns"):
        param_groups(model, {"head.*": 1.0, "*": 0.1})
    with pytest.raises(ValueError, match=r"match no mults pattern"):
        param_groups(model, {"head.*": 1.0})
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\], got layer_decay=1.5"):
        param_groups(model, layer_decay=1.5)
    with pytest.raises(ValueError, match="not both"):
        param_groups(model, {"*": 1.0}, layer_decay=0.5)
    with pytest.raises(ValueError, match=r"blocks \['nope'\] hold no trainable"):
        param_groups(model, blocks=["blocks.0", "nope"])
    with pytest.raises(ValueError, match="in two blocks"):
        param_groups(model, blocks=["blocks", "blocks.0"])
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        param_groups("model")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight_decay must be a number"):
        param_groups(model, weight_decay="0.1")  # type: ignore[arg-type]
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(frozen)


def test_user_blocks_prefixes_and_function() -> None:
    """blocks= as prefixes (coarser levels) or as a function from name to level."""
    model = TinyTransformer(depth=4)
    lo_hi = param_groups(model, layer_decay=0.5, blocks=["blocks.0", "blocks.1"])
    # blocks.2, blocks.3, norm and head come after the last given block: all in "head"
    assert [(g["name"], g["lr_mult"]) for g in lo_hi] == [
        ("stem", 0.125),
        ("blocks.0", 0.25),
        ("blocks.1", 0.5),
        ("head", 1.0),
    ]
    assert _names(model, lo_hi[-1]) >= {"blocks.3.norm.weight", "head.weight"}

    def level(name: str) -> str:
        return "body" if name.startswith(("embed", "blocks")) else "top"

    two = param_groups(model, layer_decay=0.1, blocks=level)
    assert [(g["name"], g["lr_mult"]) for g in two] == [("body", pytest.approx(0.1)), ("top", 1.0)]


@given(st.floats(min_value=0.05, max_value=1.0), st.integers(min_value=1, max_value=5))
def test_layer_decay_is_geometric(decay: float, depth: int) -> None:
    """Each level's multiplier is decay times the one above it, the top one exactly 1."""
    groups = param_groups(TinyTransformer(depth=depth), layer_decay=decay)
    mults = [g["lr_mult"] for g in groups]
    assert mults[-1] == 1.0 and len(mults) == depth + 2
    for lo, hi in itertools.pairwise(mults):
        assert lo == pytest.approx(decay * hi)


def test_scheduler_drives_named_groups_every_step() -> None:
    """Scheduler writes schedule * lr_mult * group_mult[name or block] into each group per step."""
    model = TinyGPT()
    groups = param_groups(model, layer_decay=0.5, weight_decay=0.1)
    opt = torch.optim.AdamW(groups, lr=1.0)
    sched = Scheduler(opt, lr=lrkit.linear(1e-2, 0.0, steps=5), group_mult={"h.1": 3.0})
    idx = torch.randint(0, 11, (2, 6))
    for k in range(5):
        for g in opt.param_groups:
            extra = 3.0 if g["block"] == "h.1" else 1.0
            assert g["lr"] == pytest.approx(1e-2 * (1 - k / 5) * g["lr_mult"] * extra, rel=1e-12)
        opt.zero_grad()
        model(idx).logsumexp(-1).mean().backward()
        opt.step()
        sched.step()


def test_describe_table() -> None:
    """describe_groups lists every group with its tensor and parameter counts, mult and decay."""
    model = TinyGPT()
    groups = param_groups(model, layer_decay=0.5, weight_decay=0.1)
    text = describe_groups(groups)
    lines = text.splitlines()
    assert lines[0].split() == ["group", "tensors", "params", "lr_mult", "weight_decay"]
    assert len(lines) == 2 + len(groups)
    assert lines[2].split() == ["stem", "2", str(11 * 8 + 6 * 8), "0.125", "0.1"]
    assert describe_groups(torch.optim.AdamW(groups)) == text


def test_frozen_parameters_are_left_out_and_keep_their_place() -> None:
    """A frozen backbone: only the head's parameters, in a group still called 'head'."""
    model = TinyTransformer()
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("head."))
    groups = param_groups(model, layer_decay=0.5, weight_decay=0.1)
    assert [(g["name"], g["lr_mult"]) for g in groups] == [("head", 1.0), ("head.no_decay", 1.0)]
    assert _names(model, groups[0]) | _names(model, groups[1]) == {"head.weight", "head.bias"}
