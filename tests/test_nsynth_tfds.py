"""NSynth from a prepared TensorFlow Datasets copy (`data.source=tfds`): a real TFDS directory,
written here by TFDS's own writer with the features of TFDS's `nsynth` builder, reads into the
same corpus as the same notes in the official files — fields, filters, silent-note handling and
samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import configured, nsynth_entry, write_nsynth_split
from tfds_writer import write_tfds  # TFDS itself: the tfds extra, which the dev extra includes

from corpora import nsynth
from corpora.notes import load_corpus
from overtone.audio import BadFileLog, load_audio

SPLIT_NOTES = {"train": 5, "valid": 3, "test": 3}


def notes() -> dict[str, list[tuple[dict, np.ndarray]]]:
    """Per split: (examples.json entry, 4-s audio of 16-bit values) — one silent note in train."""
    rng = np.random.default_rng(0)
    out = {}
    for split, count in SPLIT_NOTES.items():
        out[split] = []
        for i in range(count):
            instrument, family, source = 7 * i + len(split), (3 * i) % 11, i % 3
            name = f"{nsynth.FAMILIES[family]}_{nsynth.SOURCES[source]}_{instrument:03d}-{30 + i:03d}-{50 + i:03d}"
            entry = nsynth_entry(
                name, instrument=instrument, family=family, source=source, pitch=30 + i, velocity=50 + i
            )
            entry["qualities"] = [int(q == i % 10) for q in range(10)]
            silent = split == "train" and i == 2
            audio = np.zeros(64000) if silent else rng.integers(-9000, 9000, 64000) * np.exp(-np.arange(64000) / 16000)
            out[split].append((entry, (np.round(audio) / 32768).astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(TFDS data_dir, official-files root) holding the same notes."""
    base = tmp_path_factory.mktemp("nsynth_tfds")
    written = notes()
    write_tfds(base / "tfds", written)
    for split, items in written.items():
        write_nsynth_split(base / "files", split, {e["note_str"]: (e, a) for e, a in items})
    return base / "tfds", base / "files"


def corpus(tmp_path, *overrides):
    config = configured("nsynth_mixup", "--config.data.workers=1", *overrides)
    return load_corpus(config.data, bad_log=BadFileLog(0.5))


def test_a_tfds_copy_reads_into_the_corpus_the_official_files_give(both, tmp_path):
    tfds_dir, files = both
    converted = tmp_path / "converted"
    ours = corpus(
        tmp_path,
        "--config.data.source=tfds",
        f"--config.data.tfds_dir={tfds_dir}",
        f"--config.data.extract_dir={converted}",
    )
    official = corpus(tmp_path, f"--config.data.root={files}")
    for split in nsynth.SPLITS:
        a, b = ours.splits[split], official.splits[split]
        assert [n.note_str for n in a] == [n.note_str for n in b]
        strip = lambda note: {k: v for k, v in vars(note).items() if k != "path"}  # noqa: E731
        assert [strip(n) for n in a] == [strip(n) for n in b]  # every field, instrument_str included
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(load_audio(x.path, sample_rate=16000), load_audio(y.path, sample_rate=16000))
    assert ours.report["splits"] == official.report["splits"]  # the same silent note dropped
    assert ours.report["splits"]["train"]["silent_dropped"] == 1
    assert ours.num_classes == official.num_classes


def test_the_conversion_happens_once_and_again_when_the_source_changes(both, tmp_path):
    from corpora.nsynth_tfds import official_layout

    tfds_dir, _ = both
    root = official_layout(str(tfds_dir), "nsynth/full", str(tmp_path / "converted"))
    examples = root / "nsynth-valid" / "examples.json"
    before = examples.stat().st_mtime_ns
    assert official_layout(str(tfds_dir / "nsynth" / "full" / "2.3.3"), "nsynth/full", str(root)) == root
    assert examples.stat().st_mtime_ns == before  # the version folder given directly: the same source
    stamp = json.loads((root / "nsynth-valid" / "converted.json").read_text())
    (root / "nsynth-valid" / "converted.json").write_text(json.dumps(stamp | {"info": "another version"}))
    official_layout(str(tfds_dir), "nsynth/full", str(root))
    assert examples.stat().st_mtime_ns != before and not list(root.glob(".*partial"))


def test_a_missing_or_foreign_tfds_copy_is_one_line_naming_what_was_expected(tmp_path):
    from corpora.nsynth_tfds import official_layout

    with pytest.raises(nsynth.NSynthFormatError, match=r"expected .*nsynth/full/<version>/dataset_info.json"):
        official_layout(str(tmp_path), "nsynth/full", str(tmp_path / "out"))
    shuffled = tuple(reversed(nsynth.FAMILIES))
    write_tfds(tmp_path / "foreign", {"train": notes()["train"]}, families=shuffled)
    with pytest.raises(nsynth.NSynthFormatError, match=r"instrument.family must be a class label over \['bass'"):
        official_layout(str(tmp_path / "foreign"), "nsynth/full", str(tmp_path / "out"))


def test_tfds_and_a_root_at_once_are_refused(tmp_path):
    with pytest.raises(ValueError, match="give one"):
        corpus(tmp_path, "--config.data.source=tfds", f"--config.data.root={tmp_path}")
    with pytest.raises(ValueError, match=r"unknown data.source 'gcs'"):
        corpus(tmp_path, "--config.data.source=gcs")


def test_a_truncated_record_file_is_one_line_and_leaves_no_half_split(both, tmp_path):
    import shutil

    from corpora.nsynth_tfds import official_layout

    copy = tmp_path / "tfds"
    shutil.copytree(both[0], copy)
    (shard,) = copy.glob("nsynth/full/2.3.3/nsynth-train.tfrecord-*")
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(nsynth.NSynthFormatError, match=r"TFDS cannot read split 'train' \(DataLossError: .*prepare"):
        official_layout(str(copy), "nsynth/full", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # not even the empty folder it was converting into


def test_a_note_without_finite_audio_is_a_counted_skip(tmp_path):
    written = {split: list(items) for split, items in notes().items()}
    entry, audio = written["valid"][1]
    written["valid"][1] = (entry, np.full_like(audio, np.nan))
    write_tfds(tmp_path / "tfds", written)
    ours = corpus(
        tmp_path,
        "--config.data.source=tfds",
        f"--config.data.tfds_dir={tmp_path / 'tfds'}",
        f"--config.data.extract_dir={tmp_path / 'out'}",
    )
    assert ours.report["splits"]["valid"]["unreadable_skipped"] == 1
    assert entry["note_str"] not in {n.note_str for n in ours.splits["valid"]}


def test_folders_it_did_not_convert_are_never_replaced_and_failures_leave_nothing(both, tmp_path):
    from corpora.nsynth_tfds import official_layout

    tfds_dir, files = both
    mine = tmp_path / "mine"
    write_nsynth_split(
        mine,
        "train",
        {"x": (nsynth_entry("x", instrument=0, family=0, source=0, pitch=60, velocity=100), np.zeros(16000))},
    )
    with pytest.raises(nsynth.NSynthFormatError, match=r"nsynth-train exists and was not converted .* left as it is"):
        official_layout(str(tfds_dir), "nsynth/full", str(mine))
    assert (mine / "nsynth-train" / "audio" / "x.wav").is_file() and not list(mine.glob(".*partial"))
    with pytest.raises(ValueError, match=r"data.tfds_dir is read only with data.source=tfds"):
        corpus(tmp_path, f"--config.data.root={files}", f"--config.data.tfds_dir={tfds_dir}")
