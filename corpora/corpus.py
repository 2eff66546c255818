"""The dataset contract, in its two forms, and where a dataset lives.

A dataset builder (`corpora.DATASETS`) hands pretraining a `Corpus` — splits of records and how to
load each as a training example — and fine-tuning and probes a `ClipSet` — audio paths with fixed
targets per split. Every builder finds its root with `find_root`: `data.root` if given, else the
environment variable named for the dataset (`$NSYNTH_DIR`, `$FSD50K_DIR`, `$OPENMIC_DIR`,
`$IRMAS_DIR`), else — unless `data.require_real` — the embedded SoundFont stand-in
(`corpora.embedded`, rendered once into the cache), announced loudly once per process because its
numbers say nothing about the real task.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Corpus:
    root: Path
    embedded: bool  # the toolkit's own rendered stand-in, not the real dataset
    splits: dict[str, list]  # "train", "valid", "test" → records
    report: dict  # what was read, selected, dropped; written to summary.json
    num_classes: dict[str, int]  # target name → class count (e.g. family: 11, tags: 1000)
    # (num_samples, max_offset, bad_log, sample_rate) → load(record, rng | None) -> example dict
    make_loader: Callable[..., Callable]
    save_artifacts: Callable[[Path], None] = lambda workdir: None  # e.g. the tag vocabulary


@dataclasses.dataclass
class ClipSet:
    name: str
    root: Path
    embedded: bool
    classes: list[str]
    paths: dict[str, list[Path]]  # split → audio files
    targets: dict[str, np.ndarray]  # split → (N, C) float32 in {0, 1}
    observed: dict[str, np.ndarray]  # split → (N, C) bool: which labels are known
    single_label: tuple[str, ...] = ()  # splits whose clips carry exactly one label
    features: dict[str, np.ndarray] | None = None  # OpenMIC: split → shipped (N, 10, 128) uint8
    validation: str = ""  # how the valid split was formed, where a dataset offers a choice (OpenMIC)

    def drop(self, split: str, keep: np.ndarray) -> None:
        """Keep only the rows `keep` (bool) of a split, e.g. after unreadable audio was skipped."""
        self.paths[split] = [p for p, k in zip(self.paths[split], keep, strict=True) if k]
        self.targets[split], self.observed[split] = self.targets[split][keep], self.observed[split][keep]
        if self.features is not None:
            self.features[split] = self.features[split][keep]

    def keep_fraction(self, split: str, fraction: float, seed: int) -> None:
        """Keep `fraction` of a split's clips, drawn with `seed` within each class (a clip's first
        label), at least one of each — Zhong et al.'s reduced-training-data experiment."""
        if fraction >= 1.0:
            return
        first = self.targets[split].argmax(1)
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(first), bool)
        for label in np.unique(first):
            rows = np.flatnonzero(first == label)
            keep[rng.choice(rows, max(1, round(fraction * len(rows))), replace=False)] = True
        self.drop(split, keep)


_ANNOUNCED: set[Path] = set()


def find_root(
    data, *, what: str, variable: str | None, expected: str, embedded: Callable[[], Path], banner: str = ""
) -> tuple[Path, bool]:
    """(root, embedded?) for `what` (e.g. "NSynth"). `expected` says in a few words what a real root
    holds, for the error when none is given and `data.require_real` is set; `embedded()` renders
    (or finds) the stand-in; `banner` replaces the one-line warning about it."""
    root = data.root or (os.environ.get(variable, "") if variable else "")
    if root:
        return Path(root).expanduser(), False
    where = f"--config.data.root or ${variable}" if variable else "--config.data.root"
    if data.require_real:
        raise FileNotFoundError(f"no {what} given and data.require_real=True: set {where} to {expected}")
    root = Path(embedded())
    if root not in _ANNOUNCED:  # once per process, however many splits, seeds or tasks read it
        _ANNOUNCED.add(root)
        log.warning(
            banner.format(root=root)
            or f"No {what} given ({where}): using the EMBEDDED SoundFont stand-in in {root} — for trying "
            "the toolkit only, its numbers say nothing about the real task"
        )
    return root, True
