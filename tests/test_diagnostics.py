"""What pretraining measures besides its loss: the ridge probe (against scikit-learn), the
collapse diagnostics (against numpy and matrices of known rank), and the family-probe
evaluator in a run, choosing the best checkpoint."""

import json

import numpy as np
import pytest
from conftest import TINY_NSYNTH
from sklearn.linear_model import RidgeClassifier
from sklearn.preprocessing import StandardScaler

from encoders.diagnostics import collapse_diagnostics, collapse_warning, ridge_probe
from runtime.workdir import read_metrics


@pytest.mark.parametrize("classes", [2, 5, 11])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_ridge_probe_scores_what_scikit_learn_scores(classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 48)) * rng.uniform(0.1, 10.0, 48)  # badly scaled features
    y = rng.integers(0, classes, 240)
    x[:, :4] += 0.8 * y[:, None]  # some signal, so accuracy is neither chance nor perfect
    fit, scored = slice(0, 160), slice(160, None)
    scaler = StandardScaler().fit(x[fit])
    reference = RidgeClassifier(alpha=1.0).fit(scaler.transform(x[fit]), y[fit])
    expected = reference.score(scaler.transform(x[scored]), y[scored])
    assert ridge_probe(x[fit], y[fit], x[scored], y[scored], alpha=1.0) == expected


def test_the_ridge_probe_needs_two_classes():
    with pytest.raises(ValueError, match="at least two classes"):
        ridge_probe(np.ones((4, 2)), np.zeros(4), np.ones((2, 2)), np.zeros(2))


def orthogonal(rng, rows: int, rank: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(rows, rank)))[0]


@pytest.mark.parametrize("rank", [1, 7, 32])
def test_rankme_of_a_matrix_with_equal_singular_values_is_its_rank(rank):
    """Equal singular values: the normalised spectrum is uniform over `rank` values, whose
    entropy is log(rank), so RankMe = rank."""
    rng = np.random.default_rng(rank)
    embeddings = 3.0 * orthogonal(rng, 200, rank) @ orthogonal(rng, 64, rank).T
    diagnostics = collapse_diagnostics(embeddings)
    assert diagnostics["embedding_rankme"] == pytest.approx(rank, rel=1e-6)
    assert diagnostics["embedding_rank_fraction"] == pytest.approx(rank / 64, rel=1e-6)
    assert (collapse_warning(diagnostics) is not None) == (rank / 64 < 0.05)


def test_spread_and_dead_dimensions_are_numpys():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(100, 10)) * np.arange(1, 11)
    embeddings[:, [2, 5, 7, 8, 9, 0]] = 0.25  # six constant (dead) dimensions
    diagnostics = collapse_diagnostics(embeddings)
    std = embeddings.std(axis=0)
    assert diagnostics["embedding_std_mean"] == pytest.approx(std.mean())
    assert diagnostics["embedding_std_min"] == 0.0
    assert diagnostics["embedding_dead_fraction"] == 0.6
    assert "60% of the dimensions dead" in collapse_warning(diagnostics)
    white = collapse_diagnostics(rng.normal(size=(400, 16)))
    assert collapse_warning(white) is None and white["embedding_rank_fraction"] > 0.9
    assert collapse_diagnostics(np.zeros((5, 3)))["embedding_rankme"] == 0.0


def test_pretraining_logs_the_probe_and_chooses_the_best_checkpoint_by_it(in_process, tmp_path):
    summary = in_process(
        "pretrain",
        tmp_path,
        "nsynth_mixup:encoder=compact",
        *TINY_NSYNTH,
        "--config.train.batch_size=16",
        "--config.train.num_steps=9",
        "--config.train.eval_every_steps=3",
        "--config.train.select_by=probe_accuracy",
        "--config.optimizer.learning_rate=1e-3",
    )
    rows = [r for r in read_metrics(tmp_path) if r["split"] == "validation"]
    assert [r["step"] for r in rows] == [3, 6, 9]
    for row in rows:
        assert 0.0 <= row["probe_accuracy"] <= 1.0 and 0.0 <= row["embedding_dead_fraction"] <= 1.0
        assert 1.0 <= row["embedding_rankme"] <= 128 and row["embedding_std_mean"] > 0
    best = max(rows, key=lambda r: (r["probe_accuracy"], -r["step"]))  # the first of the highest
    assert summary["best_step"] == best["step"] == summary["evaluated"]["step"]
    assert summary["best_validation"]["probe_accuracy"] == best["probe_accuracy"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["evaluator"]["probe"] == "family" and config["train"]["select_by"] == "probe_accuracy"
    # the initial weights are measured too, for comparison, and never chosen
    initial = [r for r in read_metrics(tmp_path) if r["split"] == "initial"]
    assert [r["step"] for r in initial] == [0] and 0.0 <= initial[0]["probe_accuracy"] <= 1.0
    assert summary["initial"]["probe_accuracy"] == initial[0]["probe_accuracy"]


@pytest.mark.parametrize(
    "overrides, says",
    [
        (["--config.evaluator.probe=", "--config.train.select_by=probe_accuracy"], "config.train.select_by"),
        (["--config.evaluator.probe=pitch"], "config.evaluator.probe"),
        (["--config.train.select_by=acuracy"], "config.train.select_by"),
    ],
)
def test_an_evaluator_the_run_cannot_have_is_refused_before_any_data(overrides, says):
    from conftest import configured

    from overtone.errors import OvertoneError
    from pretrain.train import check_names

    with pytest.raises(OvertoneError, match=says):
        check_names(configured("nsynth_mixup", *overrides))


def test_the_evaluator_embeds_with_no_parameters_and_with_host_arrays():
    """logmel_stats has no weights to say where to compute; a bundle's encoder holds numpy arrays."""
    from flax import nnx

    import encoders
    from encoders.bundle import flat_variables, set_variables
    from pretrain.evaluators import FamilyProbe

    probe = FamilyProbe.__new__(FamilyProbe)  # only what `embeddings` reads: the notes' audio, the front-end
    probe.audio = (0.1 * np.random.default_rng(0).normal(size=(70, 16000))).astype(np.float32)
    probe.frontend, probe._embed = encoders.LogMel(), None
    stats = probe.embeddings(encoders.build_encoder({"name": "logmel_stats"}, rngs=nnx.Rngs(0)))
    patches = np.asarray(probe.frontend.patches(probe.frontend(probe.audio)))  # (70, 1, 96, 64)
    expected = np.concatenate([patches.mean(2), patches.std(2)], -1).mean(1)
    np.testing.assert_allclose(stats, expected, rtol=1e-4, atol=1e-5)
    compact = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    compact.eval()
    probe._embed = None  # compiled for one encoder's graph
    on_device = probe.embeddings(compact)
    set_variables(compact, {k: np.asarray(v) for k, v in flat_variables(compact).items()})
    probe._embed = None
    np.testing.assert_allclose(probe.embeddings(compact), on_device, rtol=1e-5, atol=1e-6)
