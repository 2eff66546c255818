"""Your own data: class folders and CSV manifests, their errors, and folder_4class_cnn end to end."""

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from corpora.folder import FolderFormatError, read_labelled_audio
from runtime.workdir import read_metrics


def class_folders(root, counts=None):
    for name, count in (counts or {"cat": 10, "dog": 10}).items():
        (root / name / "deeper").mkdir(parents=True)
        for i in range(count):
            sf.write(root / name / ("deeper" if i % 2 else "") / f"{i}.wav", tone(200.0 + i, 0.2), 16000)
    return root


def test_class_folders_give_a_stratified_seeded_split(tmp_path):
    data = read_labelled_audio(class_folders(tmp_path), valid_fraction=0.2, test_fraction=0.3, seed=1)
    assert data.classes == ["cat", "dog"] and not data.multilabel
    assert {s: len(v) for s, v in data.splits.items()} == {"train": 10, "valid": 4, "test": 6}
    for split, items in data.splits.items():
        assert sorted(labels[0] for _, labels in items).count("cat") == len(items) // 2, split
        np.testing.assert_array_equal(data.targets(split).sum(1), 1)
    again = read_labelled_audio(tmp_path, valid_fraction=0.2, test_fraction=0.3, seed=1)
    assert again.splits == data.splits


def test_manifest_with_multiple_labels_and_given_splits(tmp_path):
    for name in ("a", "b", "c"):
        sf.write(tmp_path / f"{name}.wav", tone(300.0, 0.2), 16000)
    (tmp_path / "m.csv").write_text(
        f"path,labels,split\na.wav,piano;voice,train\nb.wav,piano,valid\n{tmp_path / 'c.wav'},voice; piano ;,test\n"
    )
    data = read_labelled_audio(manifest=tmp_path / "m.csv")
    assert data.multilabel and data.classes == ["piano", "voice"]
    assert data.splits["train"] == [(tmp_path / "a.wav", ("piano", "voice"))]
    assert data.splits["test"] == [(tmp_path / "c.wav", ("voice", "piano"))]
    np.testing.assert_array_equal(data.targets("test"), [[1, 1]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,labels\na.wav,x\n", r"missing column\(s\) \['path'\]"),
        ("path,labels\nnope.wav,x\n", r"m.csv line 2: audio file .*nope.wav not found"),
        ("path,labels\na.wav,x\na.wav, ; \n", r"m.csv line 3: no labels for a.wav"),
        ("path,labels,split\na.wav,x,dev\n", r"line 2: split 'dev' is not one of"),
        ("path,labels\na.wav,x\n", r"found 1 class\(es\)"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, text, message):
    sf.write(tmp_path / "a.wav", tone(300.0, 0.2), 16000)
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(FolderFormatError, match=message):
        read_labelled_audio(manifest=tmp_path / "m.csv")


def test_folder_errors(tmp_path):
    with pytest.raises(FolderFormatError, match="is not a folder"):
        read_labelled_audio(tmp_path / "missing")
    class_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderFormatError, match=r"class folder .*empty holds no audio"):
        read_labelled_audio(tmp_path)
    (tmp_path / "empty").rmdir()
    with pytest.raises(FolderFormatError, match="the valid split is empty"):
        read_labelled_audio(tmp_path, valid_fraction=0.0)


def test_folder_4class_cnn_end_to_end(in_process, tmp_path, caplog):
    in_process(
        "finetune",
        tmp_path,
        "folder_4class_cnn",
        "--config.data.embedded.clips=12",
        "--config.train.num_epochs=8",
        "--config.train.batch_size=8",
        "--config.train.log_every_steps=1",
    )
    assert "EMBEDDED SoundFont stand-in" in caplog.text
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    single = metrics["test"]["single_label"]
    assert set(single["per_class"]) == {"drums", "flute", "other", "piano"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert np.asarray(single["confusion_matrix"]).sum() == summary["data"]["test"]
    assert (tmp_path / "report" / "confusion_test.png").is_file()
    for row in single["per_class"].values():
        assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["recall"] <= 1.0 and 0.0 <= row["f1"] <= 1.0
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["frontend"]["num_bands"] == 128 and config["data"]["augment"]["noise"] == 0.5
