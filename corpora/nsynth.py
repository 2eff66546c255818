"""Reader for the official NSynth release (Engel et al. 2017), docs/methods.md §5.

Layout, per split `train`, `valid`, `test`:

    ROOT/nsynth-<split>/examples.json     dict keyed by note_str
    ROOT/nsynth-<split>/audio/<note_str>.wav   4-s, 16 kHz, 16-bit mono

or the same still packed as ROOT/nsynth-<split>.jsonwav.tar.gz, which is unpacked once
(tarfile's 'data' filter: no paths outside the target, no links out, no devices) beside it,
or into `extract_dir`. The embedded SoundFont corpus is written in this layout too, so one
reader serves both.

Every entry is validated when read: a malformed file or entry fails with the file, the key
and the field named. Audio problems are not found by parsing JSON: `corpora.scan` decodes
every selected note once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import tarfile
from pathlib import Path

from overtone.errors import BadValueError, OvertoneError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)
REQUIRED_FIELDS = ("instrument", "pitch", "velocity", "instrument_family", "instrument_source")


class NSynthFormatError(OvertoneError, ValueError):
    """The data on disk does not have the official NSynth layout; says what and where."""


@dataclasses.dataclass(frozen=True)
class Note:
    note_str: str
    path: Path
    instrument: int
    instrument_str: str
    pitch: int
    velocity: int
    family: int
    source: int
    qualities: tuple[int, ...]

    @property
    def family_str(self) -> str:
        return FAMILIES[self.family]

    @property
    def key(self) -> str:
        return self.note_str


def split_dir(root: str | Path, split: str, *, extract_dir: str | Path | None = None) -> Path:
    """The folder holding `examples.json` and `audio/` for `split`, unpacking the archive if needed."""
    if split not in SPLITS:
        raise BadValueError(f"unknown NSynth split {split!r}; expected one of {SPLITS}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise NSynthFormatError(f"NSynth root {root} does not exist or is not a folder")
    name = f"nsynth-{split}"
    for base in filter(None, (root, extract_dir and Path(extract_dir))):
        if (base / name / "examples.json").is_file():
            return base / name
    archive = root / f"{name}.jsonwav.tar.gz"
    if archive.is_file():
        return _extract(archive, name, Path(extract_dir) if extract_dir else root)
    raise NSynthFormatError(
        f"NSynth split {split!r} not found: expected {root / name / 'examples.json'} with "
        f"{root / name / 'audio'}/<note_str>.wav, or the archive {archive}"
    )


def _extract(archive: Path, name: str, target: Path) -> Path:
    """Unpack into a temporary sibling folder, then rename: never a half-unpacked split."""
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log.info("unpacking %s into %s (once)", archive, target)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(partial, filter="data")
    except (tarfile.TarError, OSError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise NSynthFormatError(f"cannot unpack {archive}: {err}") from err
    inner = partial / name
    if not (inner / "examples.json").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        raise NSynthFormatError(f"{archive} does not contain {name}/examples.json")
    inner.rename(target / name)
    shutil.rmtree(partial, ignore_errors=True)
    return target / name


def read_split(
    root: str | Path, split: str, *, extract_dir: str | Path | None = None, file_order: bool = False
) -> list[Note]:
    """All notes of one split, validated, sorted by note_str (or in examples.json's order)."""
    folder = split_dir(root, split, extract_dir=extract_dir)
    path = folder / "examples.json"
    try:
        entries = json.loads(path.read_text(), object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, DuplicateKeyError) as err:
        raise NSynthFormatError(f"{path} is not valid JSON: {str(err)[:300]}") from err
    if not isinstance(entries, dict):
        raise NSynthFormatError(f"{path} must hold a JSON object keyed by note_str, got {type(entries).__name__}")
    notes = [_parse(path, folder, key, e) for key, e in entries.items()]
    by_name = sorted(notes, key=lambda n: n.note_str)
    for before, after in itertools.pairwise(by_name):
        if before.note_str == after.note_str:
            raise NSynthFormatError(f"{path}: note_str {after.note_str!r} is given by two entries")
    return notes if file_order else by_name


# How the training and validation notes are formed (`data.splits`): the official splits, or Zhong
# et al.'s — NSynth's train and valid pooled (953 + 53 = 1006 instruments), shuffled and cut 96 % /
# 4 % (their write_metadata_nsynth.py); test stays the official test split.
SPLIT_SCHEMES = ("official", "zhong_pooled")


def zhong_pooled(root: str | Path, *, extract_dir: str | Path | None = None) -> dict[str, list[Note]]:
    """Zhong et al.'s pretraining splits, note for note: train's then valid's entries in their
    examples.json order, `random.seed(39); random.shuffle(...)` (Python's generator, so the same
    permutation as theirs), the first int(0.96 · n) for training and the rest for validation."""
    import random

    pooled = [
        n for split in ("train", "valid") for n in read_split(root, split, extract_dir=extract_dir, file_order=True)
    ]
    names = {n.note_str for n in pooled}
    if len(names) != len(pooled):
        raise NSynthFormatError(f"{root}: a note_str appears in both nsynth-train and nsynth-valid")
    random.Random(39).shuffle(pooled)
    cut = int(0.96 * len(pooled))
    return {"train": pooled[:cut], "valid": pooled[cut:], "test": read_split(root, "test", extract_dir=extract_dir)}


class DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})[:3]
        raise DuplicateKeyError(f"key(s) {twice} appear twice in one object")
    return dict(pairs)


# field → inclusive range of the integer NSynth gives (MIDI pitch and velocity; ids ≥ 0)
RANGES = {
    "instrument": (0, 2**31 - 1),
    "pitch": (0, 127),
    "velocity": (0, 127),
    "instrument_family": (0, len(FAMILIES) - 1),
    "instrument_source": (0, len(SOURCES) - 1),
}


def _parse(path: Path, folder: Path, key: str, entry) -> Note:
    """One examples.json entry, every field used checked: type, range, and a note_str that is a
    plain file name (it becomes audio/<note_str>.wav inside the split)."""
    where = f"{path}, entry {key[:100]!r}"
    if not isinstance(entry, dict):
        raise NSynthFormatError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in entry]
    if missing:
        raise NSynthFormatError(f"{where}: missing field(s) {missing}; every entry needs {list(REQUIRED_FIELDS)}")
    note_str = entry.get("note_str", key)
    if not isinstance(note_str, str) or not plain_name(note_str):
        raise NSynthFormatError(f"{where}: note_str {repr(note_str)[:100]} is not a plain file name")
    values = {}
    for field in REQUIRED_FIELDS:
        value, (low, high) = entry[field], RANGES[field]
        if type(value) is not int or not low <= value <= high:  # not bool, float, string or null
            raise NSynthFormatError(f"{where}: {field} must be an integer in {low}..{high}, got {repr(value)[:50]}")
        values[field] = value
    qualities = entry.get("qualities", [0] * len(QUALITIES))
    flags = isinstance(qualities, list) and len(qualities) == len(QUALITIES)
    if not flags or not all(type(q) is int and q in (0, 1) for q in qualities):
        raise NSynthFormatError(f"{where}: qualities must be a list of {len(QUALITIES)} flags, each 0 or 1")
    return Note(
        note_str=note_str,
        path=folder / "audio" / f"{note_str}.wav",
        instrument=values["instrument"],
        instrument_str=str(entry.get("instrument_str", values["instrument"]))[:200],
        pitch=values["pitch"],
        velocity=values["velocity"],
        family=values["instrument_family"],
        source=values["instrument_source"],
        qualities=tuple(qualities),
    )


def plain_name(name: str) -> bool:
    return 0 < len(name) <= 200 and name not in (".", "..") and not any(c in name for c in "/\\\0")


def select(notes: list[Note], *, families=(), sources=(), pitch_min: int = 0, pitch_max: int = 127) -> list[Note]:
    """Filter by family and source names and an inclusive MIDI pitch range."""
    for name, allowed in (("family", FAMILIES), ("source", SOURCES)):
        wanted = families if name == "family" else sources
        unknown = sorted(set(wanted) - set(allowed))
        if unknown:
            raise BadValueError(f"unknown NSynth {name}(s) {unknown}; valid: {list(allowed)}")
    family_ids = {FAMILIES.index(f) for f in families}
    source_ids = {SOURCES.index(s) for s in sources}
    return [
        n
        for n in notes
        if (not family_ids or n.family in family_ids)
        and (not source_ids or n.source in source_ids)
        and pitch_min <= n.pitch <= pitch_max
    ]
