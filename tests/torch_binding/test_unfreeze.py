"""``lrkit.torch.Unfreeze``: frozen until the planned step, re-warm and bump, exact resume."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from tests.torch_binding._finetune_models import TinyTransformer

import lrkit
from lrkit.torch import Scheduler, Unfreeze, param_groups

TOTAL = 24
PLAN = [("head", 0), ("blocks.2", 6), ("blocks.1", "50%"), ("blocks.0", "3ep")]
OPTIONS = {"rewarm_steps": 4, "bump": 1.5, "bump_steps": 3}


def _setup(
    seed: int = 0, **options: object
) -> tuple[TinyTransformer, torch.optim.Optimizer, Scheduler, Unfreeze]:
    torch.manual_seed(seed)
    model = TinyTransformer(depth=3)
    opt = torch.optim.AdamW(param_groups(model, layer_decay=0.5, weight_decay=0.05), lr=1.0)
    plan = Unfreeze(PLAN, **{**OPTIONS, **options})  # type: ignore[arg-type]
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(1e-2, steps=TOTAL), steps=3),
        controllers=[plan],
        total_steps=TOTAL,
        steps_per_epoch=6,
    )
    return model, opt, sched, plan


def _batch(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + k)
    return torch.randn(16, 4, generator=g), torch.randint(0, 5, (16,), generator=g)


def _train_step(model: TinyTransformer, opt: torch.optim.Optimizer, sched: Scheduler) -> None:
    x, y = _batch(sched.last_epoch)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    sched.step()


def _expected_factor(u: int | None, k: int) -> float:
    """The re-warm and bump multipliers computed here from the documented formula."""
    if u is None or k < u:
        return 0.0
    out = min(1.0, (k - u + 1) / 4) if u > 0 else 1.0
    for e in (6, 12, 18):
        if u < e <= k and k - e < 3:
            out *= 1 + 0.5 * (1 - (k - e) / 3)
    return out


def test_blocks_train_only_from_their_step(one_thread: None) -> None:
    """A block's weights are bitwise unchanged before its step, and change from the next update."""
    model, opt, sched, plan = _setup()
    starts = {"head": 0, "blocks.2": 6, "blocks.1": 12, "blocks.0": 18, "stem": None}
    assert plan.schedule_of_groups == [starts[g["block"]] for g in opt.param_groups]
    before = copy.deepcopy(model.state_dict())
    for k in range(TOTAL):
        assert model.blocks[1].mlp[0].weight.requires_grad is (k >= 12)
        _train_step(model, opt, sched)
        now = model.state_dict()
        for name, start in (
            ("blocks.2.", 6),
            ("blocks.1.", 12),
            ("blocks.0.", 18),
            ("embed.", None),
        ):
            moved = any(not torch.equal(now[n], before[n]) for n in now if n.startswith(name))
            assert moved is (start is not None and k >= start), (name, k)
        # the warmup starts at 0: the head's first update is at step 1
        assert torch.equal(now["head.weight"], before["head.weight"]) is (k == 0)


def test_multipliers_per_group_every_step(one_thread: None) -> None:
    """Every group's lr is schedule * lr_mult * re-warm * bumps at every step, 0 while frozen."""
    model, opt, sched, plan = _setup()
    base = sched.schedules["lr"]
    at = plan.schedule_of_groups
    for k in range(TOTAL):
        assert sched.last_epoch == k
        for i, g in enumerate(opt.param_groups):
            want = float(base(k)) * g["lr_mult"] * _expected_factor(at[i], k)
            assert g["lr"] == pytest.approx(want, rel=1e-12, abs=0.0), (k, g["name"])
        _train_step(model, opt, sched)


def test_values_at_previews_the_unfreezing_factors(one_thread: None) -> None:
    """Scheduler.values_at(k) gives, for every step (ahead of time), the lr each group will get
    (0 while frozen, re-warm and bumps included), and writes nothing."""
    model, opt, sched, _ = _setup()
    previews = [sched.values_at(k)["lr"] for k in range(TOTAL)]
    assert [g["lr"] for g in opt.param_groups] == previews[0]
    for k in range(TOTAL):
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(previews[k], rel=1e-12)
        _train_step(model, opt, sched)


def test_every_unfreezes_one_block_per_period_from_the_top() -> None:
    """Unfreeze.every('1ep') plans head at 0, then each block below it one epoch later."""
    model = TinyTransformer(depth=3)
    opt = torch.optim.SGD(param_groups(model), lr=1.0)
    every = Unfreeze.every("1ep", start=2)
    Scheduler(opt, lr=0.1, controllers=[every], steps_per_epoch=5)
    got = {g["name"]: u for g, u in zip(opt.param_groups, every.schedule_of_groups, strict=True)}
    assert got == {"head": 2, "blocks.2": 7, "blocks.1": 12, "blocks.0": 17, "stem": 22}


@pytest.mark.parametrize("cut", [5, 7, 13])
def test_resume_mid_plan_is_bitwise_equal(one_thread: None, cut: int) -> None:
    """Save at step ``cut``, rebuild everything, load: weights and lrs equal the uninterrupted run."""
    model, opt, sched, _ = _setup(reset_state=True)
    lrs = []
    for _ in range(TOTAL):
        _train_step(model, opt, sched)
        lrs.append([g["lr"] for g in opt.param_groups])

    model2, opt2, sched2, _ = _setup(reset_state=True)
    for _ in range(cut):
        _train_step(model2, opt2, sched2)
    ckpt = copy.deepcopy(
        {"model": model2.state_dict(), "opt": opt2.state_dict(), "sched": sched2.state_dict()}
    )
    model3, opt3, sched3, _ = _setup(seed=1, reset_state=True)  # other initial weights
    model3.load_state_dict(ckpt["model"])
    opt3.load_state_dict(ckpt["opt"])
    sched3.load_state_dict(ckpt["sched"])
    resumed = lrs[:cut]
    for _ in range(TOTAL - cut):
        _train_step(model3, opt3, sched3)
        resumed.append([g["lr"] for g in opt3.param_groups])
    assert resumed == lrs
    for (n, a), b in zip(model.state_dict().items(), model3.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    assert [p.requires_grad for p in model.parameters()] == [
        p.requires_grad for p in model3.parameters()
    ]


def test_reset_state_drops_moments_at_unfreeze(one_thread: None) -> None:
    """reset_state=True: a group's optimizer state is dropped when it is unfrozen after step 0."""
    model, opt, sched, _ = _setup(reset_state=True)
    w = model.blocks[2].mlp[0].weight
    opt.state[w]["marker"] = torch.tensor(1.0)  # state as if loaded from pre-training
    for _ in range(6):
        _train_step(model, opt, sched)
    assert "marker" not in opt.state.get(w, {})


def test_errors() -> None:
    """A malformed plan, a name that is no group, a checkpoint with another plan: errors."""
    with pytest.raises(TypeError, match=r"plan\[0\] must be a \(group name, step\) pair"):
        Unfreeze(["head"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"plan\[0\] must be"):
        Unfreeze([("head", -1)])
    with pytest.raises(ValueError, match="bump must be >= 1"):
        Unfreeze([("head", 0)], bump=0.5)
    model = TinyTransformer()
    opt = torch.optim.SGD(param_groups(model), lr=1.0)
    with pytest.raises(ValueError, match=r"plan\[1\] names 'blocks.9', which is no param group"):
        Scheduler(opt, lr=0.1, controllers=[Unfreeze([("head", 0), ("blocks.9", 3)])])
    with pytest.raises(ValueError, match="is a fraction of the run; bind with total_steps"):
        Scheduler(opt, lr=0.1, controllers=[Unfreeze([("head", "10%")])])
    s1 = Scheduler(opt, lr=0.1, controllers=[Unfreeze([("head", 0), ("blocks.2", 4)])])
    state = s1.state_dict()
    s2 = Scheduler(opt, lr=0.1, controllers=[Unfreeze([("head", 0), ("blocks.2", 5)])])
    with pytest.raises(ValueError, match="unfreezes the groups at steps"):
        s2.load_state_dict(state)


def test_readme_fine_tuning_snippet_runs() -> None:
    """The README's Fine-tuning snippet runs: 12 blocks found, only the top one trains at first."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Fine-tuning", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    ns: dict = {}
    exec(compile(match.group(1), "README.md", "exec"), ns)
    opt = ns["opt"]
    assert {g["block"] for g in opt.param_groups} == {f"layers.{i}" for i in range(12)}
    assert all(g["lr"] == 0.0 for g in opt.param_groups if g["block"] != "layers.11")
    assert ns["sched"].get_last_lr()[-1] == 0.0  # warmup starts at 0
    assert ns["big"].duration == pytest.approx(10 * 13)  # 10 epochs of ceil(25600 / 2048)
