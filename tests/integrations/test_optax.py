"""optax: an lrkit schedule drives a real optax training loop under jax.jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrkit
import lrkit.optax

SPEC = "warmup(cosine(0.1, 0.001, steps=60), steps=10) >> constant(0.001)"


def _regression() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3
    return jnp.asarray(x), jnp.asarray(y)


def _loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def test_inject_hyperparams_training_loop_follows_the_schedule() -> None:
    """A jitted optax loop (inject_hyperparams(adam)) uses lrkit's numpy values at every update
    (float32 tolerance), steps past the end included, and the regression converges."""
    sched = lrkit.optax.schedule(SPEC)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=sched)
    x, y = _regression()
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state = opt.init(params)

    @jax.jit
    def step(params: dict, state: optax.OptState) -> tuple:
        loss, grads = jax.value_and_grad(_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    lrs, losses = [], []
    for _ in range(120):
        params, state, loss = step(params, state)
        lrs.append(float(state.hyperparams["learning_rate"]))
        losses.append(float(loss))
    np.testing.assert_allclose(lrs, lrkit.parse(SPEC)(np.arange(120)), rtol=2e-6, atol=1e-9)
    assert losses[-1] < 1e-2 * losses[0]


def test_learning_rate_argument_of_any_optimizer() -> None:
    """As ``learning_rate=`` of sgd/adamw: the first SGD update is exactly -lr(0) * grad."""
    sched = lrkit.optax.schedule("linear(0.5, 0.0, steps=10)")
    x, y = _regression()
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    grads = jax.grad(_loss)(params, x, y)
    for make in (optax.sgd, optax.adamw):
        opt = make(learning_rate=sched)
        updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
        assert np.isfinite(np.asarray(updates["w"])).all()
    sgd_updates, _ = optax.sgd(sched).update(grads, optax.sgd(sched).init(params), params)
    np.testing.assert_allclose(sgd_updates["w"], -0.5 * grads["w"], rtol=1e-6)


def test_traces_and_binds_units() -> None:
    """The schedule traces into a jaxpr (no host callback); unit lengths bind with total_steps."""
    sched = lrkit.optax.schedule("cosine(1.0, steps='50%')", total_steps=200)
    jaxpr = str(jax.make_jaxpr(sched)(jnp.int32(0)))
    assert "callback" not in jaxpr and "cos" in jaxpr
    assert float(jax.jit(sched)(jnp.int32(50))) == pytest.approx(0.5, rel=1e-6)
    assert str(sched) == "lrkit.optax.schedule(cosine(1.0, 0.0, steps=100))"
    with pytest.raises(ValueError, match="bind"):
        lrkit.optax.schedule("cosine(1.0, steps='50%')")
