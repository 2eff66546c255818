"""Evaluation protocol: windows, averaged scores and thresholds against direct computations."""

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from corpora import ClipSet
from finetune import protocol


def test_windows_slide_by_one_and_pad_short_sequences():
    a = np.arange(12, dtype=np.float32).reshape(6, 2)
    b = np.arange(4, dtype=np.float32).reshape(2, 2) + 100
    stacked, owner = protocol.windows([a, b], 3)
    assert stacked.shape == (4 + 1, 3, 2) and owner.tolist() == [0, 0, 0, 0, 1]
    for start in range(4):
        np.testing.assert_array_equal(stacked[start], a[start : start + 3])
    np.testing.assert_array_equal(stacked[4], np.stack([b[0], b[1], b[1]]))


def test_averaged_scores_equal_a_loop_over_windows():
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(n, 4)).astype(np.float32) for n in (1, 5, 9, 2)]
    weights = rng.normal(size=(4, 3))

    def predict(x):  # any per-window model: sigmoid of the mean embedding
        return 1 / (1 + np.exp(-x.mean(axis=1) @ weights))

    got = protocol.averaged_scores(predict, sequences, 2, batch=3)
    for sequence, row in zip(sequences, got, strict=True):
        if len(sequence) < 2:
            sequence = np.concatenate([sequence, sequence[-1:]])
        expected = np.mean([predict(sequence[None, s : s + 2])[0] for s in range(len(sequence) - 1)], axis=0)
        np.testing.assert_allclose(row, expected, rtol=1e-6)


def test_choose_threshold_maximises_sklearn_micro_f1():
    rng = np.random.default_rng(1)
    targets = rng.random((60, 5)) < 0.3
    scores = np.clip(0.35 * targets + 0.6 * rng.random((60, 5)), 0, 1)
    chosen = protocol.choose_threshold(scores, targets)
    f1 = {t: f1_score(targets, scores >= t, average="micro", zero_division=0) for t in protocol.THRESHOLD_GRID}
    best = max(f1.values())
    assert f1[chosen] == best
    assert chosen == min(t for t, v in f1.items() if v == best)


def _clips(targets: dict[str, np.ndarray], single=()) -> ClipSet:
    classes = [f"c{i}" for i in range(next(iter(targets.values())).shape[1])]
    return ClipSet(
        name="t",
        root=None,
        embedded=True,
        classes=classes,
        paths={},
        targets=targets,
        observed={s: np.ones_like(t, bool) for s, t in targets.items()},
        single_label=single,
    )


def test_threshold_is_chosen_on_validation_never_on_test():
    # validation rewards a low threshold, test a high one: the reported threshold must be validation's.
    valid_targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], float)
    valid_scores = np.array([[0.2, 0.05], [0.05, 0.2], [0.25, 0.1], [0.1, 0.3]])
    test_targets = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], float)
    test_scores = np.array([[0.9, 0.3], [0.3, 0.9], [0.3, 0.3], [0.3, 0.3]])
    clips = _clips({"valid": valid_targets, "test": test_targets})
    result = protocol.evaluate({"valid": valid_scores, "test": test_scores}, clips, "validation")
    chosen = result["threshold"]["value"]
    assert result["threshold"]["chosen_on"] == "valid"
    assert chosen == protocol.choose_threshold(valid_scores, valid_targets) <= 0.2
    assert result["test"]["f1_micro"] == f1_score(test_targets, test_scores >= chosen, average="micro")
    optimistic = result["extra"]["test_optimistic"]
    assert optimistic["threshold"] == protocol.choose_threshold(test_scores, test_targets) > 0.3
    assert optimistic["f1_micro"] == 1.0 > result["test"]["f1_micro"]
    assert "optimistic" in optimistic["note"]


def test_fixed_threshold_and_single_label_confusion():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 50)
    targets = np.eye(4)[labels]
    scores = rng.random((50, 4))
    clips = _clips({"valid": targets, "test": targets}, single=("valid",))
    result = protocol.evaluate({"valid": scores, "test": scores}, clips, 0.5)
    assert result["threshold"] == {"value": 0.5, "chosen_on": "fixed"}
    single = result["valid"]["single_label"]
    np.testing.assert_array_equal(
        single["confusion_matrix"], confusion_matrix(labels, scores.argmax(1), labels=range(4))
    )
    assert single["accuracy"] == np.mean(labels == scores.argmax(1))
    assert "single_label" not in result["test"]
