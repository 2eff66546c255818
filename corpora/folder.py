"""Your own labelled audio, for fine-tuning and probes on data the toolkit does not know by name.

Two layouts:

    ROOT/<class>/…/*.wav          one class per sub-folder (single-label); any depth below it
    MANIFEST.csv                  columns path,labels[,split]: labels separated by ';' (one
                                  label → single-label task), split in train/valid/test;
                                  relative paths are taken from the manifest's folder

Without a split column, each class's files are split at random with a fixed seed
(`valid_fraction`, `test_fraction`; multi-label rows by their first label). A missing
column, a missing file, an empty label list, an unknown split, a class folder without
audio: each is a `FolderFormatError` naming the file (and line).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from overtone.errors import OvertoneError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
SPLITS = ("train", "valid", "test")


class FolderFormatError(OvertoneError, ValueError):
    """A folder or manifest of labelled audio that cannot be read; says what and where."""


@dataclasses.dataclass
class LabelledAudio:
    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[Path, tuple[str, ...]]]]  # split → (file, its labels)
    multilabel: bool

    def targets(self, split: str) -> np.ndarray:
        out = np.zeros((len(self.splits[split]), len(self.classes)), np.float32)
        for row, (_, labels) in enumerate(self.splits[split]):
            out[row, [self.classes.index(label) for label in labels]] = 1.0
        return out


def read_labelled_audio(
    root: str | Path = "",
    *,
    manifest: str | Path = "",
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> LabelledAudio:
    if manifest:
        rows, base = _read_manifest(Path(manifest).expanduser()), Path(manifest).expanduser().parent
    elif root:
        rows, base = _read_class_folders(Path(root).expanduser()), Path(root).expanduser()
    else:
        raise FolderFormatError("give a folder of class sub-folders (data.root) or a CSV manifest (data.manifest)")
    if any(split is None for _, _, split in rows):
        rows = _assign_splits(rows, valid_fraction, test_fraction, seed)
    classes = sorted({label for _, labels, _ in rows for label in labels})
    if len(classes) < 2:
        raise FolderFormatError(f"{manifest or root}: found {len(classes)} class(es); a task needs at least two")
    splits = {s: [(path, labels) for path, labels, split in rows if split == s] for s in SPLITS}
    for name, items in splits.items():
        if not items:
            raise FolderFormatError(f"{manifest or root}: the {name} split is empty; add files or adjust the fractions")
    return LabelledAudio(base, classes, splits, multilabel=any(len(labels) > 1 for _, labels, _ in rows))


def _read_class_folders(root: Path) -> list[tuple[Path, tuple[str, ...], None]]:
    if not root.is_dir():
        raise FolderFormatError(f"{root} is not a folder: expected ROOT/<class>/*.wav (or give data.manifest)")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise FolderFormatError(f"class folder {folder} holds no audio ({', '.join(AUDIO_SUFFIXES)})")
        rows += [(path, (folder.name,), None) for path in files]
    if not rows:
        raise FolderFormatError(f"{root} has no class sub-folders: expected ROOT/<class>/*.wav")
    return rows


def _read_manifest(path: Path) -> list[tuple[Path, tuple[str, ...], str | None]]:
    if not path.is_file():
        raise FolderFormatError(f"manifest {path} not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = _manifest_rows(path, csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise FolderFormatError(f"{path} is not a UTF-8 CSV file: {err}") from err
    if not rows:
        raise FolderFormatError(f"{path} lists no files")
    return rows


def _manifest_rows(path: Path, reader: csv.DictReader) -> list[tuple[Path, tuple[str, ...], str | None]]:
    missing = {"path", "labels"} - set(reader.fieldnames or ())
    if missing:
        raise FolderFormatError(f"{path}: missing column(s) {sorted(missing)}; expected path,labels[,split]")
    rows = []
    for line, row in enumerate(reader, 2):
        if not row["path"]:
            raise FolderFormatError(f"{path} line {line}: no path")
        try:  # "~user" of no such user, a NUL byte: not a path this machine can open
            audio = Path(row["path"]).expanduser()
            audio = audio if audio.is_absolute() else path.parent / audio
            found = audio.is_file()
        except (RuntimeError, ValueError, OSError) as err:
            raise FolderFormatError(f"{path} line {line}: path {row['path'][:100]!r} is not usable ({err})") from err
        if not found:
            raise FolderFormatError(f"{path} line {line}: audio file {audio} not found (or not a regular file)")
        labels = tuple(dict.fromkeys(x.strip() for x in (row["labels"] or "").split(";") if x.strip()))
        if not labels:
            raise FolderFormatError(f"{path} line {line}: no labels for {row['path']}")
        split = (row.get("split") or "").strip() or None
        if split is not None and split not in SPLITS:
            raise FolderFormatError(f"{path} line {line}: split {split!r} is not one of {SPLITS}")
        rows.append((audio, labels, split))
    return rows


def _assign_splits(rows, valid_fraction: float, test_fraction: float, seed: int):
    """Per class (first label), a seeded share of files to valid and test; given splits are kept."""
    rng = np.random.default_rng(seed)
    assigned = list(rows)
    classes = sorted({labels[0] for _, labels, split in rows if split is None})
    for name in classes:
        members = [i for i, (_, labels, split) in enumerate(rows) if split is None and labels[0] == name]
        order = rng.permutation(members)
        n_test = int(round(test_fraction * len(order)))
        n_valid = int(round(valid_fraction * len(order)))
        for rank, i in enumerate(order):
            split = "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
            assigned[i] = (rows[i][0], rows[i][1], split)
    return assigned
