"""TFDS's own writer, with the features TFDS's `nsynth` builder declares: a real prepared
TFDS copy of NSynth for the tests (tests/test_nsynth_tfds.py, the README's /data)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf
import tensorflow_datasets as tfds

from corpora import nsynth

LABELS = [f"instrument_{i:04d}" for i in range(1006)]  # as instrument_labels.txt names them


def write_tfds(data_dir, notes_by_split, *, families=nsynth.FAMILIES) -> None:
    """TFDS's writer, with the features TFDS's `nsynth` builder (tensorflow_datasets/datasets/
    nsynth/nsynth_dataset_builder.py) declares, into DATA_DIR/nsynth/full/2.3.3."""
    from tensorflow_datasets.core import registered

    labels = list(LABELS)  # the notes' own instrument names where they give them
    for entries in notes_by_split.values():
        for entry, _ in entries:
            labels[entry["instrument"]] = entry["instrument_str"]
    assert len(set(labels)) == len(labels), "instrument names must be unique, as class-label names are"

    with registered.skip_registration():  # the real `nsynth` builder is registered; this one writes its layout

        class Builder(tfds.core.GeneratorBasedBuilder):
            name = "nsynth"
            VERSION = tfds.core.Version("2.3.3")
            BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="full")]

            def _info(self):
                features = {
                    "id": np.str_,
                    "audio": tfds.features.Audio(shape=(64000,), dtype=np.float32, sample_rate=16000),
                    "pitch": tfds.features.ClassLabel(num_classes=128),
                    "velocity": tfds.features.ClassLabel(num_classes=128),
                    "instrument": {
                        "label": tfds.features.ClassLabel(names=labels),
                        "family": tfds.features.ClassLabel(names=list(families)),
                        "source": tfds.features.ClassLabel(names=list(nsynth.SOURCES)),
                    },
                    "qualities": {q: np.bool_ for q in nsynth.QUALITIES},
                }
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

            def _split_generators(self, dl_manager):
                return {split: self._generate_examples(split) for split in notes_by_split}

            def _generate_examples(self, split):
                for entry, audio in notes_by_split[split]:
                    yield (
                        entry["note_str"],
                        {
                            "id": entry["note_str"],
                            "audio": audio,
                            "pitch": entry["pitch"],
                            "velocity": entry["velocity"],
                            "instrument": {
                                "label": entry["instrument"],
                                "family": entry["instrument_family"],
                                "source": entry["instrument_source"],
                            },
                            "qualities": dict(zip(nsynth.QUALITIES, map(bool, entry["qualities"]), strict=True)),
                        },
                    )

    config = tfds.download.DownloadConfig(try_download_gcs=False)
    # a new builder makes an empty scratch folder (DatasetInfo.initialize_from_bucket) that TFDS
    # never removes: made under DATA_DIR's parent instead of the machine's /tmp
    scratch = Path(data_dir).parent / ".tfds_scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with mock.patch.object(tempfile, "tempdir", str(scratch)):
        Builder(data_dir=str(data_dir)).download_and_prepare(download_config=config)


def notes_of(root: Path) -> dict[str, list[tuple[dict, np.ndarray]]]:
    """Every split of an official-layout root as (examples.json entry, float32 audio) pairs."""
    out = {}
    for split in nsynth.SPLITS:
        folder = root / f"nsynth-{split}"
        entries = json.loads((folder / "examples.json").read_text())
        out[split] = [(e, sf.read(folder / "audio" / f"{k}.wav", dtype="float32")[0]) for k, e in entries.items()]
    return out
