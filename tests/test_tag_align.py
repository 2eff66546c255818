"""COALA objective: contrastive loss against a direct numpy computation, heads, options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import encoders
import objectives
from objectives.tag_align import TagAlign, contrastive_loss


def numpy_contrastive(audio, tags, temperature):
    """COALA's loss written out: cosine similarities of the 2N projections, exp(s/τ), diagonal
    removed, −mean log(positive / row sum). float64, no log-sum-exp tricks."""
    z = np.concatenate([audio, tags]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(audio)
    e = np.exp(z @ z.T / temperature)
    np.fill_diagonal(e, 0.0)
    rows = []
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        rows.append(-np.log(e[i, partner] / e[i].sum()))
    return np.mean(rows)


@pytest.mark.parametrize("temperature", [1.0, 0.1, 0.05])
def test_matches_the_direct_computation(temperature):
    rng = np.random.default_rng(0)
    audio, tags = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    loss, _ = contrastive_loss(jnp.asarray(audio), jnp.asarray(tags), jnp.ones(6), temperature)
    assert float(loss) == pytest.approx(numpy_contrastive(audio, tags, temperature), rel=1e-5)


def test_small_temperature_stays_finite_and_tends_to_the_hard_margin():
    """At τ = 1e-3 exp(s/τ) overflows float64 in the direct formula; ours stays finite and equals
    the limit: for rows whose positive is the most similar candidate, the loss goes to 0."""
    rng = np.random.default_rng(1)
    audio = rng.normal(size=(5, 8))
    tags = audio + 0.01 * rng.normal(size=(5, 8))  # each pair nearly identical: positives win
    for temperature in (1e-3, 1e-5):
        loss, accuracy = contrastive_loss(jnp.asarray(audio), jnp.asarray(tags), jnp.ones(5), temperature)
        assert np.isfinite(float(loss)) and float(loss) < 1e-3 and float(accuracy) == 1.0
    grads = jax.grad(lambda a: contrastive_loss(a, jnp.asarray(tags), jnp.ones(5), 1e-5)[0])(jnp.asarray(audio))
    assert np.all(np.isfinite(np.asarray(grads)))


def test_weight_zero_rows_are_neither_anchors_nor_candidates():
    rng = np.random.default_rng(2)
    audio, tags = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    weights = jnp.array([1.0, 1.0, 0.0, 1.0, 1.0])
    loss, _ = contrastive_loss(jnp.asarray(audio), jnp.asarray(tags), weights, 0.1)
    keep = [0, 1, 3, 4]
    assert float(loss) == pytest.approx(numpy_contrastive(audio[keep], tags[keep], 0.1), rel=1e-5)


def test_retrieval_accuracy_counts_audio_rows_whose_nearest_tag_is_their_own():
    audio = jnp.eye(3)
    tags = jnp.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])  # clips 1 and 2 swapped
    _, accuracy = contrastive_loss(audio, tags, jnp.ones(3), 0.1)
    assert float(accuracy) == pytest.approx(1 / 3)


def make(**options):
    return TagAlign(128, vocabulary=20, num_bands=64, rngs=nnx.Rngs(0), **options)


def test_tag_encoder_layer_sizes():
    model = make()
    widths = [(d.in_features, d.out_features) for d in model.tag_encoder.dense]
    assert widths == [(20, 512), (512, 512), (512, 1152)]
    assert model.tag_projection.bias is None and model.tag_projection.out_features == 1152
    assert model.audio_projection.bias is not None and model.audio_projection.in_features == 128


def test_total_loss_weighs_its_terms_and_terms_can_be_turned_off():
    encoder = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    encoder.eval()
    frontend = encoders.LogMel()
    tags = np.zeros((4, 20), np.float32)
    tags[np.arange(4), [0, 3, 5, 7]] = 1
    batch = {
        "audio": 0.1 * jax.random.normal(jax.random.key(0), (4, 15600)),
        "tags": jnp.asarray(tags),
        "weight": jnp.ones(4),
    }
    full = make(contrastive_weight=2.0, audio_reconstruction_weight=3.0, tag_reconstruction_weight=4.0)
    full.eval()
    loss, m = full(encoder, frontend, batch, jax.random.key(1), train=False)
    expected = 2 * m["contrastive"] + 3 * m["audio_reconstruction"] + 4 * m["tag_reconstruction"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    bare = make(audio_reconstruction_weight=0.0, tag_reconstruction_weight=0.0)
    bare.eval()
    assert bare.audio_decoder is None and bare.tag_decoder is None
    loss, m = bare(encoder, frontend, batch, jax.random.key(1), train=False)
    assert set(m) == {"contrastive", "audio_to_tag_top1"} and float(loss) == pytest.approx(10 * float(m["contrastive"]))


def test_needs_a_tagged_corpus_and_a_positive_temperature():
    context = objectives.Context(embedding_dim=128, num_classes={"family": 11}, num_bands=64, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="needs a tagged corpus"):
        objectives.build_objective({"name": "tag_align"}, context)
    with pytest.raises(ValueError, match="temperature must be positive"):
        make(temperature=0.0)
