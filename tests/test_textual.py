"""Word-vector regression: targets, PyTorch's cosine embedding loss, negatives, vector files."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import encoders
from corpora.nsynth import QUALITIES
from objectives.textual import Textual, cosine_embedding_loss, quality_targets
from objectives.word_vectors import TABLE, load_quality_vectors


def torch_cosine_embedding_loss(x1, x2, y, margin):
    """PyTorch's documented formula, reduction='mean', in float64 numpy."""
    eps = 1e-8
    cos = (x1 * x2).sum(-1) / np.maximum(np.linalg.norm(x1, axis=-1) * np.linalg.norm(x2, axis=-1), eps)
    return np.mean(np.where(y > 0, 1 - cos, np.maximum(0, cos - margin)))


def test_cosine_embedding_loss_hand_worked():
    """Positive pair at 60°: 1 − 0.5 = 0.5. Negative pair at 0°: max(0, 1 − 0.5) = 0.5.
    Negative pair at 90°: max(0, 0 − 0.5) = 0. Mean: 1/3."""
    x = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    t = jnp.array([[0.5, np.sqrt(3) / 2], [1.0, 0.0], [1.0, 0.0]])
    y = jnp.array([1.0, -1.0, -1.0])
    assert float(cosine_embedding_loss(x, t, y, 0.5, jnp.ones(3))) == pytest.approx(1 / 3, rel=1e-6)


def test_cosine_embedding_loss_matches_pytorch_formula():
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(32, 300)), rng.normal(size=(32, 300))
    x2[:8] = x1[:8] + 0.1 * rng.normal(size=(8, 300))  # some similar pairs so the margin matters
    y = np.where(rng.random(32) < 0.5, 1.0, -1.0)
    got = cosine_embedding_loss(jnp.asarray(x1), jnp.asarray(x2), jnp.asarray(y), 0.5, jnp.ones(32))
    assert float(got) == pytest.approx(torch_cosine_embedding_loss(x1, x2, y, 0.5), rel=1e-5)
    weights = np.zeros(32)
    weights[:5] = 1
    got = cosine_embedding_loss(jnp.asarray(x1), jnp.asarray(x2), jnp.asarray(y), 0.5, jnp.asarray(weights))
    assert float(got) == pytest.approx(torch_cosine_embedding_loss(x1[:5], x2[:5], y[:5], 0.5), rel=1e-5)


def test_targets_average_unit_word_vectors_and_flag_undescribed_notes():
    vectors = jnp.array([[2.0, 0.0], [0.0, 5.0], [3.0, 4.0]])
    flags = jnp.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    targets, described = quality_targets(flags, vectors)
    np.testing.assert_allclose(targets, [[0.5, 0.5], [0.6, 0.8], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(described, [1.0, 1.0, 0.0])


def test_shipped_table_is_real_300d_vectors_in_quality_order():
    from objectives import word_vectors

    assert word_vectors.QUALITIES == QUALITIES  # the objective's row order is the reader's flag order
    vectors = load_quality_vectors()
    assert vectors.shape == (10, 300) and np.all(np.isfinite(vectors))
    meta = json.loads(TABLE.read_text())
    assert meta["words"]["fast_decay"] == "decay" and meta["words"]["tempo-synced"] == "rhythmic"
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    assert similarity[QUALITIES.index("bright"), QUALITIES.index("dark")] > 0.3  # antonyms share context
    assert np.all(np.abs(similarity[np.triu_indices(10, 1)]) < 0.99)  # ten different words


WORDS = [
    "bright",
    "dark",
    "distortion",
    "decay",
    "presence",
    "polyphonic",
    "modulation",
    "percussive",
    "reverb",
    "rhythmic",
]


def test_user_files_in_three_formats(tmp_path):
    rng = np.random.default_rng(1)
    table = {w: rng.normal(size=4).astype(np.float32) for w in ["the", *WORDS, "multiphonic"]}
    lines = [f"{w} " + " ".join(f"{x:.6f}" for x in v) for w, v in table.items()]
    (tmp_path / "glove.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "w2v.txt").write_text(f"{len(lines)} 4\n" + "\n".join(lines) + "\n")
    with (tmp_path / "w2v.bin").open("wb") as f:
        f.write(f"{len(table)} 4\n".encode())
        for w, v in table.items():
            f.write(w.encode() + b" " + v.tobytes() + b"\n")
    for name in ("glove.txt", "w2v.txt", "w2v.bin"):
        vectors = load_quality_vectors(tmp_path / name)
        np.testing.assert_allclose(vectors[QUALITIES.index("fast_decay")], table["decay"], atol=1e-5)
        np.testing.assert_allclose(vectors[QUALITIES.index("multiphonic")], table["multiphonic"], atol=1e-5)


def test_user_file_missing_a_word_says_which(tmp_path):
    (tmp_path / "small.txt").write_text("bright 1 2\ndark 3 4\n")
    with pytest.raises(KeyError, match="no vector for 'distortion'"):
        load_quality_vectors(tmp_path / "small.txt")
    with pytest.raises(FileNotFoundError):
        load_quality_vectors(tmp_path / "absent.txt")


def test_objective_negatives_pair_different_quality_sets_only():
    encoder = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    encoder.eval()
    frontend = encoders.LogMel()
    flags = np.zeros((4, 10), np.float32)
    flags[0, 0] = flags[1, 0] = 1  # notes 0 and 1 share their description
    flags[2, 1] = 1  # note 3 has none
    batch = {
        "audio": 0.1 * jax.random.normal(jax.random.key(0), (4, 15600)),
        "qualities": jnp.asarray(flags),
        "weight": jnp.ones(4),
    }
    objective = Textual(128, rngs=nnx.Rngs(0))
    objective.eval()
    loss, metrics = objective(encoder, frontend, batch, jax.random.key(0), train=False)
    x = np.asarray(objective.predict(encoder, frontend, batch["audio"]), np.float64)
    t, _ = quality_targets(jnp.asarray(flags), objective.vectors[...])
    t = np.asarray(t, np.float64)
    # positives: notes 0, 1, 2; negatives: (1 vs 0) no — same set; (2 vs 1) yes; (3 vs 2) no — 3 undescribed
    x1 = np.stack([x[0], x[1], x[2], x[2]])
    x2 = np.stack([t[0], t[1], t[2], t[1]])
    want = torch_cosine_embedding_loss(x1, x2, np.array([1, 1, 1, -1.0]), 0.5)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    assert float(metrics["described_fraction"]) == 0.75


def test_centred_descriptions_share_nothing_a_constant_prediction_could_fit():
    """With the shipped vectors as they are (the default), one fixed direction already has a mean
    cosine of about 0.66 with the ten single-quality targets. Centred (`centre=True`), the ten unit
    vectors sum to zero, and so does any direction's mean cosine with them before renormalisation:
    what is left to regress is what tells qualities apart."""
    flags = jnp.eye(10)

    def best_constant(objective):
        targets, _ = quality_targets(flags, objective.vectors[...])
        unit = np.asarray(targets / jnp.linalg.norm(targets, axis=-1, keepdims=True), np.float64)
        direction = unit.mean(0) / np.linalg.norm(unit.mean(0))  # the best fixed prediction
        return float((unit @ direction).mean())

    assert best_constant(Textual(128, rngs=nnx.Rngs(0))) > 0.55
    assert best_constant(Textual(128, centre=True, rngs=nnx.Rngs(0))) < 0.1
