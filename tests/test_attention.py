"""Attention classifier: pooling against numpy, parameter count, masked loss, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from encoders import parameter_count
from finetune.heads import AttentionClassifier, attention_pool, masked_bce


def test_pooling_matches_numpy():
    rng = np.random.default_rng(0)
    att, cla = rng.random((4, 10, 20)), rng.random((4, 10, 20))
    att[0, :, 0] = 0.0  # all-zero attention: the clamp makes it uniform
    a = np.clip(att, 1e-7, 1 - 1e-7)
    want = np.clip((a / a.sum(1, keepdims=True) * cla).sum(1), 0, 1)
    got = np.asarray(attention_pool(jnp.asarray(att, jnp.float32), jnp.asarray(cla, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0, 0], cla[0, :, 0].mean(), rtol=1e-5)


def test_forward_matches_a_numpy_reimplementation_in_eval_mode():
    model = AttentionClassifier(20, rngs=nnx.Rngs(0))
    model.eval()
    x = np.asarray(jax.random.normal(jax.random.key(1), (3, 10, 128)), np.float64)

    def bn(v, norm):
        mean, var = np.asarray(norm.mean[...]), np.asarray(norm.var[...])
        return (v - mean) / np.sqrt(var + norm.epsilon) * np.asarray(norm.scale[...]) + np.asarray(norm.bias[...])

    h = bn(x, model.input_norm)
    for dense, norm in zip(model.dense, model.norms, strict=True):
        h = np.maximum(bn(h @ np.asarray(dense.kernel[...]), norm), 0)
    h = h + x

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    att = sigmoid(h @ np.asarray(model.att.kernel[...]) + np.asarray(model.att.bias[...]))
    cla = sigmoid(h @ np.asarray(model.cla.kernel[...]) + np.asarray(model.cla.bias[...]))
    att = np.clip(att, 1e-7, 1 - 1e-7)
    want = np.clip((att / att.sum(1, keepdims=True) * cla).sum(1), 0, 1)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x, jnp.float32))), want, rtol=1e-4, atol=1e-5)


def test_parameter_count_is_the_papers():
    assert parameter_count(AttentionClassifier(20, rngs=nnx.Rngs(0))) == 55_336


def test_masked_loss_ignores_unobserved_labels_exactly():
    rng = np.random.default_rng(2)
    p = jnp.asarray(rng.uniform(0.01, 0.99, (8, 20)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, (8, 20)), jnp.float32)
    m = jnp.asarray(rng.random((8, 20)) < 0.3)
    loss = masked_bce(p, y, m)
    flipped = jnp.where(m, y, 1 - y)
    assert float(masked_bce(p, flipped, m)) == float(loss)
    pn, yn, mn = (np.asarray(a, np.float64) for a in (p, y, m))
    entries = -(yn * np.log(pn) + (1 - yn) * np.log(1 - pn))
    assert float(loss) == pytest.approx(entries[mn > 0].mean(), rel=1e-5)
    grads = jax.grad(lambda q: masked_bce(q, y, m))(p)
    assert np.all(np.asarray(grads)[~np.asarray(m)] == 0)


def test_masked_loss_is_finite_at_saturated_probabilities():
    """The clamp at −100 (PyTorch's) in value and in gradient: a sigmoid that saturates to 0 or 1
    exactly in float32 (logits ±20, ±50) gives finite gradients, not 0 · inf = NaN; unsaturated
    entries keep the analytic gradient (p − y) / (p (1 − p)) / n."""
    p = jnp.array([[0.0, 1.0]])
    assert float(masked_bce(p, jnp.array([[1.0, 0.0]]), jnp.ones((1, 2)))) == pytest.approx(100.0)
    logits = jnp.array([[20.0, 20.0, 50.0, -50.0, 0.5, -1.5]])
    targets = jnp.array([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    loss = lambda z: masked_bce(jax.nn.sigmoid(z), targets, jnp.ones_like(z))  # noqa: E731
    grads = np.asarray(jax.grad(loss)(logits))
    assert np.isfinite(grads).all() and np.isfinite(float(loss(logits)))
    q = 1.0 / (1.0 + np.exp(-np.array([0.5, -1.5])))
    np.testing.assert_allclose(grads[0, 4:], (q - np.array([1.0, 0.0])) / 6, rtol=1e-5)  # d/dz of the mean BCE


def test_training_mode_uses_dropout_and_needs_a_key():
    model = AttentionClassifier(5, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(3), (2, 10, 128))
    a = model(x, key=jax.random.key(0), train=True)
    b = model(x, key=jax.random.key(1), train=True)
    assert a.shape == (2, 5) and not np.allclose(a, b)
    with pytest.raises(ValueError, match=r"\(batch, time, 128\)"):
        model(jnp.zeros((2, 10, 64)))


def test_linear_head_is_a_dense_layer_on_the_mean_embedding():
    from finetune.heads import LinearHead

    head = LinearHead(5, features=8, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(3, 4, 8)).astype(np.float32)
    kernel, bias = np.asarray(head.dense.kernel[...]), np.asarray(head.dense.bias[...])
    expected = 1 / (1 + np.exp(-(x.mean(axis=1) @ kernel + bias)))
    np.testing.assert_allclose(np.asarray(head(jnp.asarray(x))), expected, rtol=1e-5)


def test_heads_registry_refuses_unknown_names_and_options():
    from ml_collections import ConfigDict

    from finetune.heads import build_head

    head = build_head(ConfigDict(dict(name="attention", hidden=16, layers=1, dropout=0.1)), 4, 128, rngs=nnx.Rngs(0))
    assert isinstance(head, AttentionClassifier) and head.cla.out_features == 4
    with pytest.raises(KeyError, match="model.name: unknown head 'gru'"):
        build_head(ConfigDict(dict(name="gru")), 4, 128, rngs=nnx.Rngs(0))
    with pytest.raises(KeyError, match=r"has no option\(s\) \['hidden'\]"):
        build_head(ConfigDict(dict(name="linear", hidden=3)), 4, 128, rngs=nnx.Rngs(0))
