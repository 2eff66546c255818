"""family_mixup: mixup properties, loss against independent references, registry errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import encoders
import objectives
from encoders.augment import mixup
from objectives.family_mixup import FamilyMixup, smooth


def log_softmax_np(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_mixup_targets_are_distributions_and_lambda_in_range():
    labels = jnp.arange(8) % 11
    targets = smooth(jax.nn.one_hot(labels, 11), 0.05)
    audio = jax.random.normal(jax.random.key(0), (8, 100))
    lambdas = []
    for seed in range(200):
        _, mixed, _, lam = mixup(jax.random.key(seed), audio, targets, jnp.ones(8), prob=0.5, alpha=0.4)
        np.testing.assert_allclose(mixed.sum(-1), 1.0, atol=1e-5)
        assert float(mixed.min()) >= 0.0
        lambdas.append(float(lam))
    lambdas = np.array(lambdas)
    assert np.all((lambdas >= 0) & (lambdas <= 1))
    mixed_share = np.mean(lambdas < 1.0)
    assert 0.38 < mixed_share < 0.62  # applied to about half the batches
    drawn = lambdas[lambdas < 1.0]
    # Beta(0.4, 0.4) is U-shaped with mean 1/2: most mass near 0 and 1
    assert abs(drawn.mean() - 0.5) < 0.1 and np.mean((drawn < 0.2) | (drawn > 0.8)) > 0.5


def test_mixup_pairs_each_example_with_its_neighbour():
    audio = jnp.arange(4.0)[:, None] * jnp.ones((4, 3))
    targets = jax.nn.one_hot(jnp.arange(4), 4)
    weights = jnp.array([1.0, 1.0, 0.0, 1.0])
    mixed_audio, mixed_targets, mixed_weights, lam = mixup(
        jax.random.key(1), audio, targets, weights, prob=1.0, alpha=0.4
    )
    lam = float(lam)
    np.testing.assert_allclose(mixed_audio[:, 0], lam * np.arange(4) + (1 - lam) * np.roll(np.arange(4), 1), rtol=1e-6)
    np.testing.assert_allclose(mixed_targets[2], [0, lam * 0 + (1 - lam), lam, 0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(mixed_weights, [1.0, 1.0, 0.0, 0.0])  # a bad partner spoils the mix


def test_mixed_target_loss_equals_lambda_weighted_losses():
    """CE(λ·a + (1-λ)·b) = λ·CE(a) + (1-λ)·CE(b): checked in numpy on the same logits."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 11))
    a, b = rng.integers(0, 11, 6), rng.integers(0, 11, 6)
    lam = 0.3
    eye = np.eye(11)
    target = lam * eye[a] + (1 - lam) * eye[b]
    lp = log_softmax_np(logits)
    mixed = -(target * lp).sum(-1)
    separate = lam * -lp[np.arange(6), a] + (1 - lam) * -lp[np.arange(6), b]
    np.testing.assert_allclose(mixed, separate, rtol=1e-12)
    import optax

    np.testing.assert_allclose(
        optax.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(target, jnp.float32)),
        mixed,
        rtol=1e-5,
    )


def make_objective(**options):
    return FamilyMixup(128, num_classes=11, rngs=nnx.Rngs(0), **options)


def batch_of(n=4, seconds_samples=15600):
    return {
        "audio": 0.1 * jax.random.normal(jax.random.key(5), (n, seconds_samples)),
        "family": jnp.array([0, 3, 5, 10][:n]),
        "instrument": jnp.zeros(n, jnp.int32),
        "weight": jnp.array([1.0, 1.0, 0.0, 1.0][:n]),
    }


def test_evaluation_loss_is_weighted_plain_cross_entropy():
    encoder = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    encoder.eval()
    objective = make_objective(label_smoothing=0.1)
    frontend = encoders.LogMel()
    batch = batch_of()
    loss, metrics = objective(encoder, frontend, batch, jax.random.key(0), train=False)
    logits = np.asarray(objective.logits(encoder, frontend, batch["audio"]), np.float64)
    per_example = -log_softmax_np(logits)[np.arange(4), np.asarray(batch["family"])]
    w = np.asarray(batch["weight"])
    np.testing.assert_allclose(float(loss), (per_example * w).sum() / w.sum(), rtol=1e-5)
    accuracy = ((logits.argmax(-1) == np.asarray(batch["family"])) * w).sum() / w.sum()
    assert float(metrics["accuracy"]) == pytest.approx(accuracy)


def test_training_loss_applies_label_smoothing():
    encoder = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    encoder.eval()
    objective = make_objective(label_smoothing=0.2, mixup_prob=0.0)
    frontend = encoders.LogMel()
    batch = batch_of()
    loss, metrics = objective(encoder, frontend, batch, jax.random.key(0), train=True)
    assert float(metrics["mixup_lambda"]) == 1.0
    lp = log_softmax_np(np.asarray(objective.logits(encoder, frontend, batch["audio"]), np.float64))
    target = np.eye(11)[np.asarray(batch["family"])] * 0.8 + 0.2 / 11
    w = np.asarray(batch["weight"])
    np.testing.assert_allclose(float(loss), ((-(target * lp).sum(-1)) * w).sum() / w.sum(), rtol=1e-5)


def context(**kw):
    values = dict(embedding_dim=128, num_classes={"family": 11, "instrument": 1006}, num_bands=64, rngs=nnx.Rngs(0))
    return objectives.Context(**(values | kw))


def test_option_validation_and_registry():
    with pytest.raises(ValueError, match="target must be one of"):
        make_objective(target="pitch")
    with pytest.raises(ValueError, match="mixup_prob"):
        make_objective(mixup_prob=1.5)
    with pytest.raises(KeyError, match=r"registered: \['denoise', 'family_mixup', 'multi', 'tag_align', 'textual'\]"):
        objectives.build_objective({"name": "mystery"}, context())
    with pytest.raises(KeyError, match="unknown option"):
        objectives.build_objective({"name": "family_mixup", "temperature": 1.0}, context())
    built = objectives.build_objective({"name": "family_mixup", "target": "instrument"}, context())
    assert built.num_classes == 1006
