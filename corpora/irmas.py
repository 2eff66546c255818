"""Reader for IRMAS (Bosch, Janer, Fuhrmann, Herrera 2012), docs/methods.md §5.

Layout under the dataset root (the three test archives unpack to folders of their own; the
excerpts are found at any depth below them):

    IRMAS-TrainingData/<code>/<…>[<code>][<dru|nod>][<genre>]<…>__<n>.wav
                                  3-s stereo 44.1 kHz excerpts, one predominant instrument
    IRMAS-TestingData-Part1/…/<name>.wav + <name>.txt   5–20 s excerpts; the .txt lists
    IRMAS-TestingData-Part2/…                           one instrument code a line
    IRMAS-TestingData-Part3/…

Training labels come from the file name's first bracketed tag, which must equal the folder;
the drums tag is optional. Test labels are the codes of the .txt (whitespace stripped). A
missing .txt, an unknown code, a file name without tags: each is an `IRMASFormatError`
naming the file (and line). Audio is decoded by `overtone.audio.load_audio`, which mixes to
mono and resamples 44.1 kHz to the encoder's rate.

Validation is carved from the training excerpts with a fixed seed, per instrument and by
recording: excerpts `…0058__1`, `…0058__2`, … come from one recording and always land in
the same split, so validation never hears a recording the model trained on.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from overtone.errors import OvertoneError

CLASSES = ("cel", "cla", "flu", "gac", "gel", "org", "pia", "sax", "tru", "vio", "voi")
CLASS_NAMES = {
    "cel": "cello",
    "cla": "clarinet",
    "flu": "flute",
    "gac": "acoustic guitar",
    "gel": "electric guitar",
    "org": "organ",
    "pia": "piano",
    "sax": "saxophone",
    "tru": "trumpet",
    "vio": "violin",
    "voi": "voice",
}
DRUM_TAGS = ("dru", "nod")
GENRES = ("cou_fol", "cla", "pop_roc", "lat_sou", "jaz_blu")
TRAINING = "IRMAS-TrainingData"
TEST_PARTS = tuple(f"IRMAS-TestingData-Part{i}" for i in (1, 2, 3))
_TAG = re.compile(r"\[([^\]]*)\]")


class IRMASFormatError(OvertoneError, ValueError):
    """IRMAS data on disk does not have the official layout; says what and where."""


@dataclasses.dataclass(frozen=True)
class Excerpt:
    path: Path
    labels: tuple[str, ...]  # instrument codes; one (the predominant) for training excerpts
    recording: str  # excerpts of one recording share this


@dataclasses.dataclass
class IRMAS:
    root: Path
    splits: dict[str, list[Excerpt]]  # "train" / "valid" (training data), "test" (testing parts)
    classes: tuple[str, ...] = CLASSES

    def targets(self, split: str) -> np.ndarray:
        """(N, 11) float32 multi-hot targets of a split."""
        out = np.zeros((len(self.splits[split]), len(self.classes)), np.float32)
        for row, excerpt in enumerate(self.splits[split]):
            out[row, [self.classes.index(code) for code in excerpt.labels]] = 1.0
        return out


def read_irmas(root: str | Path, *, valid_fraction: float = 0.15, seed: int = 0) -> IRMAS:
    root = Path(root).expanduser()
    training = _read_training(root / TRAINING)
    parts = [root / part for part in TEST_PARTS if (root / part).is_dir()]
    if not parts:
        raise IRMASFormatError(f"no test data under {root}: expected folder(s) {', '.join(TEST_PARTS)}")
    test = [excerpt for part in parts for excerpt in _read_test_part(part)]
    train, valid = split_by_recording(training, valid_fraction, seed)
    return IRMAS(root=root, splits={"train": train, "valid": valid, "test": test})


def parse_training_name(path: Path) -> Excerpt:
    """`[cel][nod][cla]0058__1.wav` in folder `cel` → Excerpt(labels=('cel',), recording=…)."""
    tags = _TAG.findall(path.name)
    if not tags:
        raise IRMASFormatError(
            f"{path}: training file name carries no [tag]s (expected e.g. [cel][nod][cla]0058__1.wav)"
        )
    code = tags[0]
    if code not in CLASSES:
        raise IRMASFormatError(f"{path}: unknown instrument code {code!r}; IRMAS codes: {', '.join(CLASSES)}")
    if code != path.parent.name:
        raise IRMASFormatError(f"{path}: instrument tag [{code}] disagrees with its folder {path.parent.name!r}")
    recording = re.sub(r"__\d+$", "", path.stem)
    return Excerpt(path=path, labels=(code,), recording=f"{code}/{recording}")


def _read_training(folder: Path) -> list[Excerpt]:
    if not folder.is_dir():
        raise IRMASFormatError(f"{folder} not found: an IRMAS root holds {TRAINING}/<code>/*.wav and {TEST_PARTS[0]}/…")
    excerpts = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name not in CLASSES:
            raise IRMASFormatError(f"{sub}: unknown instrument folder; IRMAS codes: {', '.join(CLASSES)}")
        excerpts += [parse_training_name(path) for path in sorted(sub.glob("*.wav"))]
    if not excerpts:
        raise IRMASFormatError(f"{folder} holds no <code>/*.wav training excerpts")
    return excerpts


def _read_test_part(part: Path) -> list[Excerpt]:
    excerpts = []
    for wav in sorted(part.rglob("*.wav")):
        label_file = wav.with_suffix(".txt")
        if not label_file.is_file():
            raise IRMASFormatError(f"{wav} has no label file {label_file.name} beside it")
        codes = []
        try:
            text = label_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise IRMASFormatError(f"{label_file} is not UTF-8 text ({err.reason} at byte {err.start})") from err
        for number, line in enumerate(text.splitlines(), 1):
            code = line.strip()
            if not code:
                continue
            if code not in CLASSES:
                raise IRMASFormatError(
                    f"{label_file} line {number}: unknown instrument code {code!r}; IRMAS codes: {', '.join(CLASSES)}"
                )
            codes.append(code)
        if not codes:
            raise IRMASFormatError(f"{label_file} lists no instrument")
        excerpts.append(Excerpt(path=wav, labels=tuple(dict.fromkeys(codes)), recording=str(wav.relative_to(part))))
    if not excerpts:
        raise IRMASFormatError(f"{part} holds no .wav excerpts")
    return excerpts


def split_by_recording(excerpts: list[Excerpt], fraction: float, seed: int) -> tuple[list[Excerpt], list[Excerpt]]:
    """(train, valid): per instrument, a seeded `fraction` of its recordings (at least one when
    it has two or more) goes to validation with all of its excerpts."""
    rng = np.random.default_rng(seed)
    valid_recordings: set[str] = set()
    for code in CLASSES:
        recordings = sorted({e.recording for e in excerpts if e.labels[0] == code})
        count = int(round(fraction * len(recordings)))
        if fraction > 0 and len(recordings) >= 2:
            count = min(max(count, 1), len(recordings) - 1)
        valid_recordings.update(rng.permutation(recordings)[:count].tolist())
    train = [e for e in excerpts if e.recording not in valid_recordings]
    valid = [e for e in excerpts if e.recording in valid_recordings]
    return train, valid
