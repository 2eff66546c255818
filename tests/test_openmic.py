"""OpenMIC-2018 reader on fixtures in the official layout, with its error cases."""

import json

import numpy as np
import pytest

from corpora.openmic import CLASSES, OpenMICFormatError, read_openmic


def write_openmic(root, n=30, *, train_keys=None, test_keys=None, object_keys=False):
    rng = np.random.default_rng(0)
    keys = np.asarray([f"{i:06d}_{i * 960}" for i in range(n)])
    y_true = rng.random((n, 20)).astype(np.float32)
    y_mask = rng.random((n, 20)) < 0.3
    x = rng.integers(0, 256, (n, 10, 128), dtype=np.uint8)
    np.savez(
        root / "openmic-2018.npz",
        X=x,
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=keys.astype(object) if object_keys else keys,
    )
    (root / "class-map.json").write_text(json.dumps({c: i for i, c in enumerate(CLASSES)}))
    (root / "partitions").mkdir(exist_ok=True)
    train = train_keys if train_keys is not None else list(keys[::-1][: n - 10])  # reversed: rows ≠ order
    test = test_keys if test_keys is not None else list(keys[:10])
    (root / "partitions" / "split01_train.csv").write_text("\n".join(train) + "\n")
    (root / "partitions" / "split01_test.csv").write_text("\n".join(test) + "\n")
    return keys, x, y_true, y_mask


def test_reads_arrays_labels_and_splits_by_key(tmp_path):
    keys, x, y_true, y_mask = write_openmic(tmp_path)
    data = read_openmic(tmp_path, valid_fraction=0.25, seed=0)
    assert data.classes == list(CLASSES)
    np.testing.assert_array_equal(data.targets, (y_true >= 0.5).astype(np.float32))
    np.testing.assert_array_equal(data.observed, y_mask)
    assert sorted(data.keys[data.splits["test"]]) == sorted(keys[:10])
    train, valid = set(data.splits["train"]), set(data.splits["valid"])
    assert len(valid) == 5 and not train & valid and train | valid == set(range(10, 30))
    assert list(read_openmic(tmp_path, valid_fraction=0.25, seed=0).splits["valid"]) == sorted(valid)
    assert data.audio_path("000046_3840") == tmp_path / "audio" / "000" / "000046_3840.ogg"


def test_a_split_key_missing_from_the_npz_is_named(tmp_path):
    write_openmic(tmp_path, test_keys=["000001_960", "999999_0"])
    with pytest.raises(OpenMICFormatError, match=r"split01_test.csv line 2: sample_key '999999_0' is not in"):
        read_openmic(tmp_path)


def test_an_npz_needing_pickle_is_refused(tmp_path):
    write_openmic(tmp_path, object_keys=True)
    with pytest.raises(OpenMICFormatError, match="without pickle"):
        read_openmic(tmp_path)


def test_missing_pieces(tmp_path):
    with pytest.raises(OpenMICFormatError, match="openmic-2018.npz not found"):
        read_openmic(tmp_path)
    write_openmic(tmp_path)
    (tmp_path / "class-map.json").write_text(json.dumps({"piano": 0}))
    with pytest.raises(OpenMICFormatError, match="must map 20 class names"):
        read_openmic(tmp_path)
    (tmp_path / "class-map.json").write_text(json.dumps({c: i for i, c in enumerate(CLASSES)}))
    (tmp_path / "partitions" / "split01_train.csv").unlink()
    with pytest.raises(OpenMICFormatError, match="split01_train.csv not found"):
        read_openmic(tmp_path)


def test_wrong_shapes_are_described(tmp_path):
    write_openmic(tmp_path)
    with np.load(tmp_path / "openmic-2018.npz") as npz:
        arrays = dict(npz)
    arrays["Y_mask"] = arrays["Y_mask"][:, :5]
    np.savez(tmp_path / "openmic-2018.npz", **arrays)
    with pytest.raises(OpenMICFormatError, match=r"shapes disagree .*Y_mask \(30, 5\)"):
        read_openmic(tmp_path)


def _edited(root, **changes):
    with np.load(root / "openmic-2018.npz") as npz:
        arrays = dict(npz)
    np.savez(root / "openmic-2018.npz", **(arrays | {k: change(arrays) for k, change in changes.items()}))


def _nan_where_observed(a):
    y = a["Y_true"].copy()
    y[np.argwhere(a["Y_mask"])[0][0], np.argwhere(a["Y_mask"])[0][1]] = np.nan
    return y


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Y_true": _nan_where_observed}, r"Y_true\[\d+, \d+\] = nan is observed but not in \[0, 1\]"),
        ({"Y_true": lambda a: a["Y_true"] * 3}, "is observed but not in"),
        ({"Y_true": lambda a: a["Y_true"].astype(str)}, "Y_true holds <U32 values; expected numbers"),
        ({"Y_mask": lambda a: a["Y_mask"].astype(np.int8) * 2}, "Y_mask must hold 0/1"),
        ({"X": lambda a: np.full(a["X"].shape, np.nan)}, "X holds NaN or Inf"),
        ({"sample_key": lambda a: np.concatenate([a["sample_key"][:1], a["sample_key"][:-1]])}, "duplicates"),
        ({"sample_key": lambda a: np.concatenate([["../../x"], a["sample_key"][1:]])}, "is not a plain name"),
    ],
)
def test_values_are_checked_where_they_are_read(tmp_path, change, message):
    """An observed label that is NaN would read as a negative; strings, a 2 in the mask, duplicate
    or path-like keys: each one line naming the file and what is wrong."""
    write_openmic(tmp_path)
    _edited(tmp_path, **change)
    with pytest.raises(OpenMICFormatError, match=message) as err:
        read_openmic(tmp_path)
    assert "openmic-2018.npz" in str(err.value)


def test_unobserved_nan_labels_are_allowed_and_non_utf8_files_are_named(tmp_path):
    write_openmic(tmp_path)
    _edited(tmp_path, Y_true=lambda a: np.where(a["Y_mask"], a["Y_true"], np.nan))
    assert read_openmic(tmp_path).targets.shape == (30, 20)  # unobserved: never used
    (tmp_path / "partitions" / "split01_test.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(OpenMICFormatError, match=r"split01_test.csv is not UTF-8 text"):
        read_openmic(tmp_path)


def write_attention_mic_split(path, train, val):
    """AttentionMIC's data/train_val.split: np.savez of int64 `train` and `val` (written by
    numpy to a file object, as its name has no .npz)."""
    with open(path, "wb") as out:
        np.savez(out, train=np.asarray(train, np.int64), val=np.asarray(val, np.int64))


def test_attention_mic_split_file_indexes_the_training_clips_in_npz_order(tmp_path):
    keys, *_ = write_openmic(tmp_path)  # split01_train.csv lists keys 29…10, the reverse of the npz
    write_attention_mic_split(tmp_path / "train_val.split", train=[0, 1, 2, 5, 6, 7, 8, 9, 10, 11], val=[3, 4, 19])
    data = read_openmic(tmp_path, val_split=tmp_path / "train_val.split")
    listed = set((tmp_path / "partitions" / "split01_train.csv").read_text().split())
    train_index = np.array([i for i in range(len(keys)) if keys[i] in listed])  # AttentionMIC's data_split.py
    assert list(data.splits["valid"]) == sorted(train_index[[3, 4, 19]]) == [13, 14, 29]
    assert list(data.splits["train"]) == sorted(train_index[[0, 1, 2, 5, 6, 7, 8, 9, 10, 11]])
    assert sorted(data.keys[data.splits["test"]]) == sorted(keys[:10])  # the test split is untouched


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(train=[0, 1], value=[2]), r"arrays \['train', 'value'\]; expected an npz"),
        (dict(train=[0, 1], val=[20]), "'val' indexes rows up to 20, but split01_train.csv has 20 clips"),
        (dict(train=[0, 1], val=[-1]), "'val' indexes rows up to"),
        (dict(train=[0, 1, 2], val=[2, 3]), "1 clips are in both 'train' and 'val'"),
        (dict(train=[0, 0], val=[3]), "'train' repeats clips"),
        (dict(train=[0.0, 1.0], val=[3]), "'train' is float64"),
    ],
)
def test_a_bad_split_file_is_one_line(tmp_path, arrays, message):
    write_openmic(tmp_path)
    with open(tmp_path / "train_val.split", "wb") as out:
        np.savez(out, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(OpenMICFormatError, match=message):
        read_openmic(tmp_path, val_split=tmp_path / "train_val.split")


def test_a_split_file_that_is_not_an_npz_is_named(tmp_path):
    write_openmic(tmp_path)
    (tmp_path / "train_val.split").write_text("0 1 2\n")
    with pytest.raises(OpenMICFormatError, match=r"cannot read .*train_val.split: .*expected an npz"):
        read_openmic(tmp_path, val_split=tmp_path / "train_val.split")


def test_the_split_file_is_found_in_the_root_named_or_turned_off(tmp_path):
    """data.val_split: "auto" takes ROOT/train_val.split where it is; "off" the seeded 10 %; a
    named file that is not there is one line."""
    from conftest import configured

    import corpora

    write_openmic(tmp_path)
    load = corpora.get_dataset("openmic", "clips")
    data = configured("openmic_attention", f"--config.data.root={tmp_path}").data
    assert len(load(data, 0).paths["valid"]) == 2  # 10 % of 20, seeded
    write_attention_mic_split(tmp_path / "train_val.split", train=range(5, 20), val=range(5))
    clips = load(data, 0)
    assert len(clips.paths["valid"]) == 5 and "train_val.split" in clips.validation
    off = configured("openmic_attention", f"--config.data.root={tmp_path}", "--config.data.val_split=off").data
    assert len(load(off, 0).paths["valid"]) == 2 and "seed 0" in load(off, 0).validation
    named = configured("openmic_attention", f"--config.data.root={tmp_path}", "--config.data.val_split=/no/such.split")
    with pytest.raises(OpenMICFormatError, match="config.data.val_split=/no/such.split: no such file"):
        load(named.data, 0)
