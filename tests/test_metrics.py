"""Every metric equals scikit-learn's definition on the same (observed) entries."""

import numpy as np
import pytest
from sklearn import metrics as sk

from finetune.metrics import average_precision, multilabel_metrics, singlelabel_metrics


def random_problem(seed, n=60, c=7, mask_rate=0.0, ties=False):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, c)) < 0.3).astype(int)
    targets[np.arange(c), np.arange(c)] = 1  # every class has a positive
    targets[:, 0] |= ~targets.any(1)  # every sample has a positive
    scores = np.clip(0.6 * targets + 0.7 * rng.random((n, c)) - 0.1, 0, 1)
    if ties:
        scores = np.round(scores, 1)
    observed = rng.random((n, c)) >= mask_rate
    observed[np.arange(c), np.arange(c)] = True
    return scores, targets, observed


@pytest.mark.parametrize("seed", range(3))
def test_fully_observed_equals_sklearn(seed):
    scores, targets, _ = random_problem(seed, ties=seed == 2)
    got = multilabel_metrics(scores, targets)
    predicted = (scores >= 0.5).astype(int)
    for average in ("micro", "macro"):
        assert got[f"f1_{average}"] == pytest.approx(sk.f1_score(targets, predicted, average=average, zero_division=0))
        assert got[f"precision_{average}"] == pytest.approx(
            sk.precision_score(targets, predicted, average=average, zero_division=0)
        )
        assert got[f"recall_{average}"] == pytest.approx(
            sk.recall_score(targets, predicted, average=average, zero_division=0)
        )
    assert got["lrap"] == pytest.approx(sk.label_ranking_average_precision_score(targets, scores))
    assert got["map"] == pytest.approx(sk.average_precision_score(targets, scores, average="macro"))
    per_class_f1 = sk.f1_score(targets, predicted, average=None, zero_division=0)
    assert [v["f1"] for v in got["per_class"].values()] == pytest.approx(list(per_class_f1))


@pytest.mark.parametrize("seed", range(3))
def test_masked_entries_count_nowhere(seed):
    scores, targets, observed = random_problem(seed, mask_rate=0.4, ties=seed == 1)
    got = multilabel_metrics(scores, targets, observed)
    predicted = (scores >= 0.5).astype(int)
    c = scores.shape[1]
    f1s = [sk.f1_score(targets[observed[:, k], k], predicted[observed[:, k], k], zero_division=0) for k in range(c)]
    assert got["f1_macro"] == pytest.approx(np.mean(f1s))
    pooled = sk.f1_score(targets[observed], predicted[observed], zero_division=0)
    assert got["f1_micro"] == pytest.approx(pooled)
    openmic = [
        sk.f1_score(
            targets[observed[:, k], k], predicted[observed[:, k], k], average="macro", labels=[0, 1], zero_division=0
        )
        for k in range(c)
    ]
    assert got["openmic_f1"] == pytest.approx(np.mean(openmic))
    aps = [sk.average_precision_score(targets[observed[:, k], k], scores[observed[:, k], k]) for k in range(c)]
    assert got["map"] == pytest.approx(np.mean(aps))
    rows = [i for i in range(len(scores)) if targets[i][observed[i]].any()]
    lraps = [
        sk.label_ranking_average_precision_score(targets[i][observed[i]][None], scores[i][observed[i]][None])
        for i in rows
    ]
    assert got["lrap"] == pytest.approx(np.mean(lraps))
    # changing what is hidden changes nothing
    flipped = np.where(observed, targets, 1 - targets)
    noisy = np.where(observed, scores, 1 - scores)
    again = multilabel_metrics(noisy, flipped, observed)
    assert {k: v for k, v in again.items() if k != "per_class"} == {k: v for k, v in got.items() if k != "per_class"}


def test_average_precision_with_ties_equals_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(20):
        targets = rng.integers(0, 2, 30)
        targets[0] = 1
        scores = np.round(rng.random(30), 1)
        assert average_precision(scores, targets) == pytest.approx(sk.average_precision_score(targets, scores))


def test_singlelabel_equals_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, 200)
    predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 5, 200))
    predicted[predicted == 4] = 3  # class 4 never predicted: precision is 0, not NaN
    names = ["a", "b", "c", "d", "e"]
    got = singlelabel_metrics(predicted, labels, names)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    np.testing.assert_array_equal(got["confusion_matrix"], sk.confusion_matrix(labels, predicted, labels=range(5)))
    p, r, f, support = sk.precision_recall_fscore_support(labels, predicted, labels=range(5), zero_division=0)
    assert [got["per_class"][n]["precision"] for n in names] == pytest.approx(list(p))
    assert [got["per_class"][n]["recall"] for n in names] == pytest.approx(list(r))
    assert [got["per_class"][n]["f1"] for n in names] == pytest.approx(list(f))
    assert got["f1_macro"] == pytest.approx(sk.f1_score(labels, predicted, average="macro", zero_division=0))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ"):
        multilabel_metrics(np.zeros((3, 2)), np.zeros((3, 3)))


def test_top1_in_labels_equals_a_direct_loop():
    rng = np.random.default_rng(5)
    scores, targets = rng.random((40, 6)), rng.random((40, 6)) < 0.3
    observed = rng.random((40, 6)) < 0.7
    got = multilabel_metrics(scores, targets, observed)["top1_in_labels"]
    hits = []
    for s, t, m in zip(scores, targets, observed, strict=True):
        if (t & m).any():
            best = max(np.flatnonzero(m), key=lambda c: s[c])
            hits.append(bool(t[best]))
    assert got == pytest.approx(np.mean(hits))
