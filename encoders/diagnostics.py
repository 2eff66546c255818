"""What an embedding says about its encoder: collapse diagnostics and a quick linear probe.

Both work on plain arrays, one row per clip (for instance the mean of a clip's patch
embeddings), so pretraining can log them at every evaluation (pretrain/evaluators.py) and
anyone can run them on embeddings they hold.

- `collapse_diagnostics`: per-dimension standard deviation (mean and minimum), the fraction of
  dead dimensions (constant over the clips), and the effective rank RankMe (Garrido et al.,
  "RankMe", ICML 2023: the exponential of the entropy of the normalised singular values; between
  1 for a rank-one embedding and min(N, D) for a white one). `collapse_warning` turns them into
  a sentence when the embedding has collapsed.
- `ridge_probe`: a one-vs-all ridge-regression classifier in closed form on standardised
  features (the same model as scikit-learn's RidgeClassifier): no iterations, no learning rate,
  deterministic — quick enough to run at every evaluation, and the same number on every
  process of a multi-process job.
"""

from __future__ import annotations

import numpy as np

DEAD_STD = 1e-6  # a dimension whose standard deviation over the clips is below this is dead
COLLAPSED_RANK_FRACTION = 0.05  # RankMe below this fraction of min(N, D)
COLLAPSED_DEAD_FRACTION = 0.5


def collapse_diagnostics(embeddings: np.ndarray) -> dict[str, float]:
    """(N, D) embeddings → {embedding_std_mean, embedding_std_min, embedding_dead_fraction,
    embedding_rankme, embedding_rank_fraction}."""
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"expected (clips, dimensions) embeddings, got shape {x.shape}")
    std = x.std(axis=0)
    singular = np.linalg.svd(x, compute_uv=False)
    total = singular.sum()
    if total > 0:
        p = singular / total + 1e-12  # RankMe's epsilon: log of a zero singular value
        rankme = float(np.exp(-np.sum(p * np.log(p))))
    else:
        rankme = 0.0  # all zeros: no direction at all
    return {
        "embedding_std_mean": float(std.mean()),
        "embedding_std_min": float(std.min()),
        "embedding_dead_fraction": float(np.mean(std < DEAD_STD)),
        "embedding_rankme": rankme,
        "embedding_rank_fraction": rankme / min(x.shape),
    }


def collapse_warning(diagnostics: dict[str, float]) -> str | None:
    """A sentence when the diagnostics say the embedding collapsed, else None."""
    rank, dead = diagnostics["embedding_rank_fraction"], diagnostics["embedding_dead_fraction"]
    if rank < COLLAPSED_RANK_FRACTION or dead > COLLAPSED_DEAD_FRACTION:
        return (
            f"the embedding looks collapsed: effective rank (RankMe) {diagnostics['embedding_rankme']:.2f} "
            f"= {rank:.1%} of its maximum, {dead:.0%} of the dimensions dead"
        )
    return None


def ridge_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    alpha: float = 1.0,
) -> float:
    """Accuracy on (test_x, test_y) of a ridge classifier fitted on (train_x, train_y): features
    standardised by the training rows, targets ±1 one-vs-all, intercept unpenalised, weights
    (XᵀX + αI)⁻¹ XᵀY on centred X and Y; the prediction is the class with the highest score."""
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    classes = np.unique(train_y)
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two classes in its training rows, got {classes.tolist()}")
    mean, std = train_x.mean(0), train_x.std(0)
    std[std == 0] = 1.0
    x = (train_x - mean) / std
    targets = np.where(train_y[:, None] == classes[None, :], 1.0, -1.0)
    x_mean, y_mean = x.mean(0), targets.mean(0)
    xc, yc = x - x_mean, targets - y_mean
    weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    bias = y_mean - x_mean @ weights
    scores = ((test_x - mean) / std) @ weights + bias
    return float(np.mean(classes[np.argmax(scores, axis=1)] == np.asarray(test_y)))
