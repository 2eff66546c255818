"""IRMAS reader on fixtures written in the official layout, and its errors."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from corpora.irmas import CLASSES, IRMASFormatError, parse_training_name, read_irmas, split_by_recording
from overtone.audio import load_audio


def stereo(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 44100)) / 44100
    left = 0.4 * np.sin(2 * np.pi * freq * t)
    return np.stack([left, 0.5 * left], axis=1).astype(np.float32)


def write_irmas(root: Path, *, recordings: int = 3, test: dict[str, str] | None = None) -> Path:
    for code in ("cel", "pia", "voi"):
        folder = root / "IRMAS-TrainingData" / code
        folder.mkdir(parents=True)
        for number in range(1, recordings + 1):
            for k in (1, 2, 3):
                drums = "[nod]" if number % 2 else "[dru]"
                sf.write(folder / f"0{number}2__[{code}]{drums}[jaz_blu]{number:04d}__{k}.wav", stereo(0.2), 44100)
    test = test if test is not None else {"a": "cel\t\npia\t\n", "b": "voi\n\n", "c": " gel \n"}
    for i, (stem, labels) in enumerate(test.items()):
        folder = root / f"IRMAS-TestingData-Part{i % 3 + 1}" / f"Part{i % 3 + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{stem}.wav", stereo(0.3), 44100)
        if labels is not None:
            (folder / f"{stem}.txt").write_text(labels)
    return root


def test_reads_the_official_layout(tmp_path):
    dataset = read_irmas(write_irmas(tmp_path), valid_fraction=0.34, seed=0)
    assert len(dataset.splits["train"]) + len(dataset.splits["valid"]) == 3 * 3 * 3
    assert [e.labels for e in dataset.splits["test"]] == [("cel", "pia"), ("voi",), ("gel",)]
    targets = dataset.targets("test")
    assert targets.shape == (3, 11) and targets.sum() == 4
    assert targets[0, CLASSES.index("cel")] == targets[0, CLASSES.index("pia")] == 1
    train_targets = dataset.targets("train")
    assert (train_targets.sum(1) == 1).all()
    for excerpt, row in zip(dataset.splits["train"], train_targets, strict=True):
        assert CLASSES[int(row.argmax())] == excerpt.path.parent.name


def test_validation_holds_whole_recordings_of_every_instrument(tmp_path):
    dataset = read_irmas(write_irmas(tmp_path, recordings=4), valid_fraction=0.25, seed=3)
    train = {e.recording for e in dataset.splits["train"]}
    valid = {e.recording for e in dataset.splits["valid"]}
    assert not train & valid
    assert len(valid) == 3  # one of four recordings per instrument
    assert {r.split("/")[0] for r in valid} == {"cel", "pia", "voi"}
    assert len(dataset.splits["valid"]) == 9  # all three excerpts of each held-out recording
    again = read_irmas(tmp_path, valid_fraction=0.25, seed=3)
    assert [e.path for e in again.splits["valid"]] == [e.path for e in dataset.splits["valid"]]


def test_training_file_names_are_parsed_like_irmas_names_them():
    excerpt = parse_training_name(Path("IRMAS-TrainingData/cel/008__[cel][nod][cla]0058__1.wav"))
    assert excerpt.labels == ("cel",) and excerpt.recording == "cel/008__[cel][nod][cla]0058"
    excerpt = parse_training_name(Path("IRMAS-TrainingData/cla/[cla][pop_roc]0150__3.wav"))
    assert excerpt.labels == ("cla",)  # [cla] first is the clarinet; a later [cla] is the genre
    with pytest.raises(IRMASFormatError, match=r"disagrees with its folder 'pia'"):
        parse_training_name(Path("IRMAS-TrainingData/pia/[cel][nod][cla]0058__1.wav"))
    with pytest.raises(IRMASFormatError, match=r"unknown instrument code 'xyz'"):
        parse_training_name(Path("IRMAS-TrainingData/xyz/[xyz][cla]0001__1.wav"))
    with pytest.raises(IRMASFormatError, match="carries no"):
        parse_training_name(Path("IRMAS-TrainingData/cel/0058__1.wav"))


def test_missing_label_file_is_named(tmp_path):
    write_irmas(tmp_path, test={"a": "cel\n", "lonely": None})
    with pytest.raises(IRMASFormatError, match=r"lonely\.wav has no label file lonely\.txt"):
        read_irmas(tmp_path)


def test_unknown_code_names_file_and_line(tmp_path):
    write_irmas(tmp_path, test={"a": "cel\n", "b": "pia\nbanjo\n"})
    with pytest.raises(IRMASFormatError, match=r"b\.txt line 2: unknown instrument code 'banjo'"):
        read_irmas(tmp_path)


def test_missing_parts_and_folders_say_what_was_expected(tmp_path):
    with pytest.raises(IRMASFormatError, match="IRMAS-TrainingData.*not found"):
        read_irmas(tmp_path)
    write_irmas(tmp_path, test={})
    with pytest.raises(IRMASFormatError, match="no test data .*IRMAS-TestingData-Part1"):
        read_irmas(tmp_path)
    (tmp_path / "IRMAS-TrainingData" / "banjo").mkdir()
    with pytest.raises(IRMASFormatError, match="banjo: unknown instrument folder"):
        read_irmas(tmp_path)


def test_empty_label_file_is_an_error(tmp_path):
    write_irmas(tmp_path, test={"a": " \n\t\n"})
    with pytest.raises(IRMASFormatError, match="lists no instrument"):
        read_irmas(tmp_path)


def test_stereo_44k_becomes_16k_mono(tmp_path):
    wave = stereo(1.0)
    sf.write(tmp_path / "x.wav", wave, 44100, subtype="FLOAT")
    loaded = load_audio(tmp_path / "x.wav", sample_rate=16000)
    expected = soxr.resample(wave.mean(axis=1), 44100, 16000, quality="HQ")
    assert loaded.shape == (16000,) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, expected, atol=1e-6)


def test_split_keeps_single_recording_instruments_in_train():
    from corpora.irmas import Excerpt

    excerpts = [Excerpt(Path(f"{i}.wav"), ("cel",), "cel/only") for i in range(3)]
    train, valid = split_by_recording(excerpts, 0.5, 0)
    assert len(train) == 3 and not valid
