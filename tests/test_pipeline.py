"""grain pipeline: deterministic, resumable, complete evaluation, consistent across processes."""

import numpy as np
import pytest

from corpora.pipeline import evaluation_batches, training_batches


def load(record, rng):
    offset = 0 if rng is None else int(rng.integers(0, 1000))
    return {"id": np.int32(record), "offset": np.int32(offset), "weight": np.float32(1.0)}


RECORDS = list(range(10))


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_same_seed_same_batches_other_seed_other_batches():
    a = take(training_batches(RECORDS, load, batch_size=4, seed=0), 6)
    b = take(training_batches(RECORDS, load, batch_size=4, seed=0), 6)
    c = take(training_batches(RECORDS, load, batch_size=4, seed=1), 6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["id"], y["id"])
        np.testing.assert_array_equal(x["offset"], y["offset"])
    assert any(not np.array_equal(x["id"], y["id"]) for x, y in zip(a, c, strict=True))


def test_resume_from_step_k_continues_the_same_sequence():
    full = take(training_batches(RECORDS, load, batch_size=4, seed=3), 8)
    resumed = take(training_batches(RECORDS, load, batch_size=4, seed=3, start_step=5), 3)
    for x, y in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(x["id"], y["id"])
        np.testing.assert_array_equal(x["offset"], y["offset"])


def test_each_epoch_is_a_fresh_permutation():
    batches = take(training_batches(RECORDS, load, batch_size=5, seed=0), 4)
    epochs = [np.concatenate([b["id"] for b in batches[i : i + 2]]) for i in (0, 2)]
    assert all(sorted(e) == RECORDS for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])


def test_two_processes_split_each_global_batch():
    whole = take(training_batches(RECORDS, load, batch_size=4, seed=7), 3)
    parts = [
        take(training_batches(RECORDS, load, batch_size=4, seed=7, process_index=p, process_count=2), 3) for p in (0, 1)
    ]
    for k in range(3):
        joined = np.concatenate([parts[0][k]["id"], parts[1][k]["id"]])
        np.testing.assert_array_equal(joined, whole[k]["id"])


def test_evaluation_sees_everything_once_and_pads_with_weight_zero():
    batches = list(evaluation_batches(RECORDS, load, batch_size=4))
    assert len(batches) == 3
    ids = np.concatenate([b["id"] for b in batches])
    weights = np.concatenate([b["weight"] for b in batches])
    assert list(ids[weights == 1]) == RECORDS
    assert weights.sum() == 10 and (weights == 0).sum() == 2
    assert all(b["offset"].max() == 0 for b in batches)  # no random crops at evaluation


def test_errors():
    with pytest.raises(ValueError, match="fewer than one batch"):
        training_batches(RECORDS[:3], load, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="not divisible"):
        training_batches(RECORDS, load, batch_size=5, seed=0, process_count=2)
