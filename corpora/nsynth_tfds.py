"""NSynth from a prepared TensorFlow Datasets copy (`data.source=tfds`, `pip install -e ".[tfds]"`).

TPU and cloud users often hold NSynth as TFDS prepares it — DATA_DIR/nsynth/<config>/<version>/
(dataset_info.json, features.json, nsynth-<split>.tfrecord-*), next to their job. `official_layout`
turns each split of it, once, into the official release's layout (nsynth-<split>/examples.json
and audio/<note_str>.wav, 16-bit PCM as the release ships it) and returns that root, so that
every later step — fields, filters, the silent-note scan, the PCM cache — is the official
reader's (corpora/nsynth.py) and a run on either copy selects the same notes. A split is
written into a hidden `.nsynth-<split>.partial` folder and renamed when complete: a failed or
interrupted conversion removes it (a killed one leaves it for the next run to remove), never
leaves a half-written split, and the next run converts what is missing. A `nsynth-<split>`
folder the toolkit did not convert is never replaced.

The TFDS features map to examples.json's fields: `id` → note_str; `pitch`, `velocity` (class
labels 0–127) → the MIDI values; `instrument.label` → instrument (its index; the TFDS builder
names the labels from the release's instrument_labels.txt) and instrument_str (its name);
`instrument.family`, `instrument.source` → instrument_family/source and their names (the
release's order, checked); `qualities.<name>` → the ten quality flags in the release's order;
`audio` (float32, 64,000 samples at 16 kHz) → the WAV, quantised to 16 bits (exact for the
release's audio, which TFDS read from 16-bit files).

Differences from the release's files: TFDS stores notes in its own order, so examples.json lists
them in that order and Zhong et al.'s `zhong_pooled` split (a shuffle of the files' order) cuts
another, equally random, permutation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora import nsynth
from overtone.disk import cache_root
from overtone.errors import OvertoneError
from overtone.progress import track

log = logging.getLogger(__name__)

REQUIRED = ("id", "audio", "pitch", "velocity", "instrument", "qualities")
FORMAT = "overtone-nsynth-from-tfds-v1"  # the marker of a finished conversion


def data_dir(configured: str) -> Path:
    """`data.tfds_dir`, else $TFDS_DATA_DIR, else TFDS's default ~/tensorflow_datasets."""
    return Path(configured or os.environ.get("TFDS_DATA_DIR", "") or Path.home() / "tensorflow_datasets").expanduser()


def prepared_dir(root: Path, name: str) -> Path:
    """The version folder of `name` ("nsynth/full") under `root`, the newest if several; `root`
    may also be that folder itself."""
    if (root / "dataset_info.json").is_file():
        return root
    versions = sorted(
        (p for p in (root / name).glob("*") if (p / "dataset_info.json").is_file()),
        key=lambda p: tuple(int(x) if x.isdigit() else -1 for x in p.name.split(".")),
    )
    if not versions:
        raise nsynth.NSynthFormatError(
            f"no prepared TFDS dataset {name!r} in {root}: expected {root / name}/<version>/dataset_info.json "
            f"with its nsynth-<split>.tfrecord-* files (as tfds.builder({name!r}).download_and_prepare() "
            "writes them), or set data.tfds_dir to that version folder"
        )
    return versions[-1]


def official_layout(tfds_dir: str, name: str = "nsynth/full", target: str = "") -> Path:
    """The root of the official layout for the prepared TFDS copy of `name`, converted once into
    `target` (default: the toolkit's cache, a folder per source)."""
    source = prepared_dir(data_dir(tfds_dir), name)
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    root = Path(target).expanduser() if target else cache_root() / "nsynth-from-tfds" / f"{source.name}-{digest}"
    stamp = {"format": FORMAT, "source": str(source.resolve()), "info": _info_digest(source)}
    if all(_converted(root / f"nsynth-{split}", stamp) for split in nsynth.SPLITS):
        return root
    builder = _builder(source)
    for split in nsynth.SPLITS:
        if not _converted(root / f"nsynth-{split}", stamp):
            _convert(builder, split, root, stamp)
    return root


def _info_digest(source: Path) -> str:
    return hashlib.sha256((source / "dataset_info.json").read_bytes()).hexdigest()


def _converted(folder: Path, stamp: dict) -> bool:
    try:
        return json.loads((folder / "converted.json").read_text()) == stamp
    except (OSError, ValueError):
        return False


def _builder(source: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise OvertoneError(
            f'data.source=tfds needs TensorFlow Datasets ({err}): pip install -e ".[tfds]"; or point '
            "data.root at the official nsynth-<split> folders instead"
        ) from err
    tf.config.set_visible_devices([], "GPU")  # TensorFlow only reads files here: the GPUs stay JAX's
    try:
        builder = tfds.builder_from_directory(str(source))
    except Exception as err:  # noqa: BLE001 - TFDS raises many types for a broken folder
        raise nsynth.NSynthFormatError(f"{source} is not a readable TFDS dataset: {str(err)[:300]}") from err
    _check_features(builder.info.features, source)
    return builder


def _check_features(features, source: Path) -> None:
    missing = [f for f in REQUIRED if f not in features]
    if missing:
        raise nsynth.NSynthFormatError(
            f"{source}: features {missing} missing; NSynth's TFDS builder has {list(REQUIRED)}"
        )
    instrument, qualities = features["instrument"], features["qualities"]
    for key, names in (("family", nsynth.FAMILIES), ("source", nsynth.SOURCES)):
        if key not in instrument or tuple(instrument[key].names) != names:
            raise nsynth.NSynthFormatError(f"{source}: instrument.{key} must be a class label over {list(names)}")
    if sorted(qualities.keys()) != sorted(nsynth.QUALITIES):
        raise nsynth.NSynthFormatError(f"{source}: qualities must be the flags {list(nsynth.QUALITIES)}")
    rate = getattr(features["audio"], "sample_rate", None)
    if rate != 16000:
        raise nsynth.NSynthFormatError(f"{source}: audio must be 16 kHz (NSynth's rate), the dataset says {rate}")


def _convert(builder, split: str, root: Path, stamp: dict) -> None:
    """One split into `root`; a record TFDS cannot read (a truncated or corrupt tfrecord file)
    stops the conversion with one line — the copy must be prepared again — and leaves nothing."""
    import tensorflow as tf

    final, partial = root / f"nsynth-{split}", root / f".nsynth-{split}.partial"
    if final.exists() and not (final / "converted.json").is_file():
        raise nsynth.NSynthFormatError(
            f"{final} exists and was not converted from TFDS by this toolkit; it is left as it is: "
            "set data.extract_dir to another folder (or data.source=files, data.root to read it)"
        )
    try:
        _write_split(builder, split, final, partial, stamp)
    except BaseException as err:  # a failed or interrupted split leaves no folder behind
        shutil.rmtree(partial, ignore_errors=True)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        if isinstance(err, OSError):
            raise OvertoneError(f"cannot write the converted NSynth {split} into {root}: {err}") from err
        if not isinstance(err, tf.errors.OpError):
            raise
        first = str(err.message if hasattr(err, "message") else err).strip().splitlines()[0][:300]
        raise nsynth.NSynthFormatError(
            f"{builder.data_dir}: TFDS cannot read split {split!r} ({type(err).__name__}: {first}); "
            "prepare the dataset again (tfds.builder(...).download_and_prepare())"
        ) from err


def _write_split(builder, split: str, final: Path, partial: Path, stamp: dict) -> None:
    import tensorflow_datasets as tfds

    if split not in builder.info.splits:
        raise nsynth.NSynthFormatError(f"{builder.data_dir}: no split {split!r}; it has {list(builder.info.splits)}")
    features = builder.info.features
    label = features["instrument"]["label"]
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "audio").mkdir(parents=True)
    entries = {}
    total = builder.info.splits[split].num_examples
    examples = tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))
    for index, example in enumerate(track(examples, total, f"NSynth {split} from TFDS", unit="note")):
        note_str = example["id"].decode() if isinstance(example["id"], bytes) else str(example["id"])
        if not nsynth.plain_name(note_str):
            raise nsynth.NSynthFormatError(
                f"{builder.data_dir}, {split}: id {note_str[:100]!r} is not a plain file name"
            )
        audio = np.asarray(example["audio"], np.float32).reshape(-1)
        if audio.size and np.all(np.isfinite(audio)):
            pcm = np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
            sf.write(partial / "audio" / f"{note_str}.wav", pcm, 16000, subtype="PCM_16")
        else:  # listed without its WAV: the scan counts it unreadable and skips it, as for the files
            log.warning("NSynth %s from TFDS: note %s has no finite audio; it will be skipped", split, note_str)
        instrument = example["instrument"]
        flags = [int(bool(example["qualities"][q])) for q in nsynth.QUALITIES]
        entries[note_str] = {
            "note": index,
            "note_str": note_str,
            "instrument": int(instrument["label"]),
            "instrument_str": label.int2str(int(instrument["label"])),
            "pitch": int(example["pitch"]),
            "velocity": int(example["velocity"]),
            "sample_rate": 16000,
            "qualities": flags,
            "qualities_str": [q for q, flag in zip(nsynth.QUALITIES, flags, strict=True) if flag],
            "instrument_family": int(instrument["family"]),
            "instrument_family_str": nsynth.FAMILIES[int(instrument["family"])],
            "instrument_source": int(instrument["source"]),
            "instrument_source_str": nsynth.SOURCES[int(instrument["source"])],
        }
    (partial / "examples.json").write_text(json.dumps(entries))
    (partial / "converted.json").write_text(json.dumps(stamp))
    shutil.rmtree(final, ignore_errors=True)  # only ever an older conversion (checked in _convert)
    partial.rename(final)
    log.info("NSynth %s: %d notes converted from %s into %s", split, len(entries), builder.data_dir, final)
