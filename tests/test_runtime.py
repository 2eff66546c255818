"""Runtime pieces: optimiser maths, checkpoint fallback, metrics log on resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from runtime.checkpoint import CheckpointReadError, Checkpoints
from runtime.optim import build_optimizer, learning_rate_schedule
from runtime.workdir import MetricsWriter, read_metrics


def opt_config(**kw):
    base = dict(name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="constant", warmup_steps=0)
    return ConfigDict(base | kw)


def test_adam_with_weight_decay_is_pytorch_style_l2():
    """torch.optim.Adam(weight_decay=wd): g ← g + wd·θ, then Adam; re-derived in numpy."""
    theta = np.array([0.5, -1.0, 2.0])
    grad = np.array([0.1, 0.2, -0.3])
    tx = build_optimizer(opt_config(weight_decay=0.1), total_steps=10)
    state = tx.init(jnp.asarray(theta))
    updates, _ = tx.update(jnp.asarray(grad), state, jnp.asarray(theta))
    g = grad + 0.1 * theta
    m, v = 0.1 * g, 0.001 * g**2
    m_hat, v_hat = m / (1 - 0.9), v / (1 - 0.999)
    np.testing.assert_allclose(updates, -1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-5)


def test_encoder_learns_at_a_scaled_rate_when_fine_tuning():
    """The encoder's group is the filter fine-tuning declares, applied to a model shaped like its
    EncoderWithHead: encoder updates scaled by 0.1, the head's unchanged."""
    from flax import nnx

    from finetune.train import ENCODER_PARAMS

    class Model(nnx.Module):
        def __init__(self):
            self.encoder = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
            self.head = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(1)), nnx.Linear(2, 1, rngs=nnx.Rngs(2)))

    params = nnx.state(Model(), nnx.Param)
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.3), params)
    plain = build_optimizer(opt_config(), 10)
    scaled = build_optimizer(opt_config(), 10, lr_scales=[(ENCODER_PARAMS, 0.1)])
    reference, _ = plain.update(grads, plain.init(params), params)
    updates, _ = scaled.update(grads, scaled.init(params), params)
    for part, factor in (("encoder", 0.1), ("head", 1.0)):
        for got, want in zip(jax.tree.leaves(updates[part]), jax.tree.leaves(reference[part]), strict=True):
            np.testing.assert_allclose(got, factor * np.asarray(want), rtol=1e-6)
            assert np.abs(np.asarray(want)).min() > 0


def test_cosine_schedule_with_warmup():
    schedule = learning_rate_schedule(opt_config(schedule="cosine", warmup_steps=10), total_steps=110)
    assert float(schedule(0)) == 0.0
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(60)) == pytest.approx(0.5e-3, rel=1e-3)
    assert float(schedule(110)) == pytest.approx(0.0, abs=1e-9)
    warm = learning_rate_schedule(opt_config(warmup_steps=4), total_steps=100)
    assert [float(warm(s)) for s in (0, 2, 4, 50)] == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])


def test_unknown_optimizer_and_schedule():
    with pytest.raises(ValueError, match="valid: \\('adam', 'adamw', 'sgd'\\)"):
        build_optimizer(opt_config(name="lion"), 10)
    with pytest.raises(ValueError, match="schedule"):
        build_optimizer(opt_config(schedule="step"), 10)


def test_checkpoint_restore_falls_back_past_an_unreadable_step(tmp_path):
    state = {"w": jnp.arange(4.0), "b": jnp.ones(2)}
    ckpt = Checkpoints(tmp_path, keep=3)
    for step in (1, 2, 3):
        ckpt.save(step, jax.tree.map(lambda x, s=step: x * s, state), {"step": step})
    ckpt.wait()
    for path in (tmp_path / "checkpoints" / "3" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    ckpt.close()
    restored_state, meta = Checkpoints(tmp_path, keep=3).restore(state)
    assert meta == {"step": 2}
    np.testing.assert_array_equal(restored_state["w"], np.arange(4.0) * 2)


def test_no_checkpoint_restores_to_none(tmp_path):
    assert Checkpoints(tmp_path).restore({"w": jnp.zeros(2)}) is None


def test_checkpoints_that_fit_no_step_are_refused_not_restarted_over(tmp_path):
    """Checkpoints of another model (another toolkit version's layout, say) are never taken as
    "no checkpoint": that would train from step 0 over them."""
    ckpt = Checkpoints(tmp_path)
    ckpt.save(4, {"0": {"w": jnp.ones(3)}}, {"step": 4})
    ckpt.wait()
    ckpt.close()
    with pytest.raises(CheckpointReadError, match="none of the checkpoints .* can be read into this model"):
        Checkpoints(tmp_path).restore({"model": {"w": jnp.zeros(3)}})
    assert (tmp_path / "checkpoints" / "4").is_dir()


def test_metrics_log_drops_rows_after_the_resumed_step(tmp_path):
    writer = MetricsWriter(tmp_path)
    for step in range(1, 6):
        writer.write(step, "train", {"loss": 1.0 / step})
    writer.close()
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "split": "tr')  # a row half-written by a killed process
    MetricsWriter(tmp_path, resume_step=3).close()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    MetricsWriter(tmp_path).close()  # a fresh run starts a fresh log
    assert not (tmp_path / "metrics.jsonl").exists()


def test_saving_a_step_that_exists_replaces_it(tmp_path):
    """A resumed run recomputes steps it had saved before the kill (e.g. as the best)."""
    ckpt = Checkpoints(tmp_path)
    ckpt.save(4, {"w": jnp.zeros(2)}, {"step": 4}, best=True)
    ckpt.save(4, {"w": jnp.ones(2)}, {"step": 4, "again": True}, best=True)
    ckpt.wait()
    state, meta = ckpt.restore({"w": jnp.zeros(2)}, best=True)
    assert meta == {"step": 4, "again": True}
    np.testing.assert_array_equal(state["w"], [1.0, 1.0])
    ckpt.close()
