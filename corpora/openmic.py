"""Reader for OpenMIC-2018 (Humphrey, Durand, McFee 2018; cosmir/openmic-2018), docs/methods.md §5.

Layout under the dataset root:

    openmic-2018.npz          X (N, 10, 128) uint8 VGGish features, Y_true (N, 20) float
                              confidences, Y_mask (N, 20) bool, sample_key (N,) str
    class-map.json            {"accordion": 0, …, "voice": 19}
    partitions/split01_train.csv, split01_test.csv   one sample_key a line
    audio/000/000046_3840.ogg (folder = the key's first three digits)

A label is observed where Y_mask is set and positive where Y_true ≥ 0.5. Split files are
matched to the npz by key, not by row; a key missing from the npz is an error naming the
file and line. Validation is AttentionMIC's train_val.split where one is given, else carved
from the training keys with a fixed seed. The npz is
read with `allow_pickle=False`: a file whose arrays need pickle is refused.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

import numpy as np

from overtone.errors import OvertoneError

CLASSES = (
    "accordion",
    "banjo",
    "bass",
    "cello",
    "clarinet",
    "cymbals",
    "drums",
    "flute",
    "guitar",
    "mallet_percussion",
    "mandolin",
    "organ",
    "piano",
    "saxophone",
    "synthesizer",
    "trombone",
    "trumpet",
    "ukulele",
    "violin",
    "voice",
)


class OpenMICFormatError(OvertoneError, ValueError):
    """OpenMIC-2018 data on disk does not have the official layout; says what and where."""


@dataclasses.dataclass
class OpenMIC:
    root: Path
    keys: np.ndarray  # (N,) str
    features: np.ndarray  # (N, 10, 128) uint8
    targets: np.ndarray  # (N, C) float32 in {0, 1}
    observed: np.ndarray  # (N, C) bool
    classes: list[str]
    splits: dict[str, np.ndarray]  # "train" / "valid" / "test" → row indices

    def audio_path(self, key: str) -> Path:
        return self.root / "audio" / key[:3] / f"{key}.ogg"


def read_openmic(
    root: str | Path, *, valid_fraction: float = 0.1, seed: int = 0, val_split: str | Path | None = None
) -> OpenMIC:
    """The dataset under `root`. Validation: the rows AttentionMIC's `val_split` file names (its
    data/train_val.split), or else `valid_fraction` of the training keys drawn with `seed`."""
    root = Path(root).expanduser()
    npz_path = root / "openmic-2018.npz"
    if not npz_path.is_file():
        raise OpenMICFormatError(
            f"{npz_path} not found: an OpenMIC-2018 root holds openmic-2018.npz, class-map.json, "
            "partitions/split01_{train,test}.csv and audio/"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            missing = [k for k in ("X", "Y_true", "Y_mask", "sample_key") if k not in npz.files]
            if missing:
                raise OpenMICFormatError(f"{npz_path} lacks array(s) {missing}; found {npz.files}")
            x, y_true, y_mask, keys = (npz[k] for k in ("X", "Y_true", "Y_mask", "sample_key"))
    except ValueError as err:
        if isinstance(err, OpenMICFormatError):
            raise
        raise OpenMICFormatError(f"cannot read {npz_path} without pickle: {err}") from err
    n = len(keys)
    if x.ndim != 3 or x.shape[0] != n or y_true.shape != y_mask.shape or y_true.shape[0] != n:
        raise OpenMICFormatError(
            f"{npz_path}: shapes disagree — X {x.shape}, Y_true {y_true.shape}, Y_mask {y_mask.shape}, "
            f"sample_key {keys.shape}; expected (N, T, D), (N, C), (N, C), (N,)"
        )
    _check_values(npz_path, x, y_true, y_mask, keys)
    classes = _read_class_map(root / "class-map.json", y_true.shape[1])
    index = {str(k): i for i, k in enumerate(keys)}
    splits = {}
    for name in ("train", "test"):
        splits[name] = _read_split(root / "partitions" / f"split01_{name}.csv", index)
    if val_split is not None:
        splits["train"], splits["valid"] = _attention_mic_split(Path(val_split), np.sort(splits["train"]))
    else:
        rng = np.random.default_rng(seed)
        shuffled = rng.permutation(splits["train"])
        cut = int(round(valid_fraction * len(shuffled)))
        splits["valid"], splits["train"] = np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
    return OpenMIC(
        root=root,
        keys=keys.astype(str),
        features=x,
        targets=(y_true >= 0.5).astype(np.float32),
        observed=y_mask.astype(bool),
        classes=classes,
        splits=splits,
    )


def _check_values(path: Path, x, y_true, y_mask, keys) -> None:
    """Every array the reader uses holds what OpenMIC ships: numbers (not strings), labels that
    are finite and in [0, 1] wherever they are observed (an observed NaN would silently read as
    a negative), a 0/1 mask, unique keys that are plain names."""
    for name, array in (("X", x), ("Y_true", y_true), ("Y_mask", y_mask)):
        if array.dtype.kind not in "biuf":
            raise OpenMICFormatError(f"{path}: {name} holds {array.dtype} values; expected numbers")
    observed = y_mask.astype(bool) if y_mask.dtype.kind == "b" else y_mask != 0
    if y_mask.dtype.kind != "b" and not np.isin(y_mask, (0, 1)).all():
        raise OpenMICFormatError(f"{path}: Y_mask must hold 0/1 (or booleans)")
    labels = y_true[observed].astype(np.float64)
    if not np.isfinite(labels).all() or ((labels < 0) | (labels > 1)).any():
        bad = np.argwhere(observed & ~((y_true >= 0) & (y_true <= 1)))[0]
        value = y_true[tuple(bad)]
        raise OpenMICFormatError(f"{path}: Y_true[{bad[0]}, {bad[1]}] = {value} is observed but not in [0, 1]")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise OpenMICFormatError(f"{path}: X holds NaN or Inf")
    names = keys.astype(str)
    if len(set(names)) != len(names):
        twice = collections.Counter(names).most_common(1)[0][0]
        raise OpenMICFormatError(f"{path}: sample_key holds duplicates, e.g. {twice!r}")
    plain = [k for k in names if not k or "/" in k or "\\" in k or k in (".", "..")]
    if plain:
        raise OpenMICFormatError(f"{path}: sample_key {plain[0]!r} is not a plain name (audio/<k[:3]>/<k>.ogg)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise OpenMICFormatError(f"{path} not found") from err
    except UnicodeDecodeError as err:
        raise OpenMICFormatError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from err


def _read_class_map(path: Path, count: int) -> list[str]:
    try:
        mapping = json.loads(_read_text(path))
    except (json.JSONDecodeError, RecursionError) as err:
        raise OpenMICFormatError(f"{path} is not valid JSON: {str(err)[:200]}") from err
    if not isinstance(mapping, dict) or sorted(mapping.values()) != list(range(count)):
        raise OpenMICFormatError(f"{path} must map {count} class names to the indices 0..{count - 1}")
    return [name for name, _ in sorted(mapping.items(), key=lambda item: item[1])]


def _attention_mic_split(path: Path, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AttentionMIC's train_val.split: an npz of int arrays `train` and `val` indexing the
    split01_train clips in the order of openmic-2018.npz (its data/data_split.py writes train.npz
    so). Returns (train rows, validation rows) of the npz."""
    expected = "an npz with integer arrays 'train' and 'val' (AttentionMIC's data/train_val.split)"
    try:
        with np.load(path, allow_pickle=False) as split:
            if not {"train", "val"} <= set(split.files):
                raise OpenMICFormatError(f"{path}: arrays {split.files}; expected {expected}")
            train, val = split["train"], split["val"]
    except (OSError, ValueError, EOFError) as err:
        if isinstance(err, OpenMICFormatError):
            raise
        raise OpenMICFormatError(f"cannot read {path}: {str(err)[:200]}; expected {expected}") from err
    n = len(train_rows)
    for name, rows in (("train", train), ("val", val)):
        if rows.ndim != 1 or rows.dtype.kind not in "iu" or len(rows) == 0:
            raise OpenMICFormatError(f"{path}: {name!r} is {rows.dtype} {rows.shape}; expected {expected}")
        if rows.min() < 0 or rows.max() >= n:
            raise OpenMICFormatError(
                f"{path}: {name!r} indexes rows up to {rows.max()}, but split01_train.csv has {n} clips "
                "(a split file made for another partition?)"
            )
        if len(np.unique(rows)) != len(rows):
            raise OpenMICFormatError(f"{path}: {name!r} repeats clips")
    if np.intersect1d(train, val).size:
        raise OpenMICFormatError(f"{path}: {np.intersect1d(train, val).size} clips are in both 'train' and 'val'")
    return np.sort(train_rows[train]), np.sort(train_rows[val])


def _read_split(path: Path, index: dict[str, int]) -> np.ndarray:
    if not path.is_file():
        raise OpenMICFormatError(f"split file {path} not found")
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        key = line.strip()
        if not key:
            continue
        if key not in index:
            raise OpenMICFormatError(f"{path} line {number}: sample_key {key!r} is not in openmic-2018.npz")
        rows.append(index[key])
    if not rows:
        raise OpenMICFormatError(f"{path} lists no sample keys")
    return np.asarray(rows)
