"""Downstream tasks: labelled clips with train / valid / test splits, from disk or embedded.

`TASKS` is the registry (`openmic`, `irmas`, `folder` — your own class folders or CSV
manifest — and for linear probes `nsynth_family`, `nsynth_pitch`); `load_task(config.data)` returns a `ClipSet`:
audio paths, targets and observed-label masks per split, and (OpenMIC) the shipped VGGish
features. The dataset root comes from `data.root`, else `$OPENMIC_DIR` / `$IRMAS_DIR`; with
neither, the embedded SoundFont stand-in is rendered (once) and used, loudly, unless
`data.require_real`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from pathlib import Path

import numpy as np

from corpora.irmas import CLASS_NAMES, read_irmas
from corpora.openmic import read_openmic
from overtone.errors import unknown_name

log = logging.getLogger(__name__)


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

    def drop(self, split: str, keep: np.ndarray) -> None:
        """Keep only the rows `keep` (bool) of a split, e.g. after unreadable audio was skipped."""
        self.paths[split] = [p for p, k in zip(self.paths[split], keep, strict=True) if k]
        self.targets[split], self.observed[split] = self.targets[split][keep], self.observed[split][keep]
        if self.features is not None:
            self.features[split] = self.features[split][keep]


def _root(data, variable: str, render) -> tuple[Path, bool]:
    root = data.root or os.environ.get(variable, "")
    if root:
        return Path(root).expanduser(), False
    if data.require_real:
        raise FileNotFoundError(f"no dataset given: set --config.data.root or {variable}")
    root = render()
    log.warning(
        "No dataset given (data.root / %s): using the EMBEDDED SoundFont stand-in in %s — "
        "for trying the toolkit only, its numbers say nothing about the real task",
        variable,
        root,
    )
    return root, True


def load_openmic(data, seed: int) -> ClipSet:
    from corpora.soundfont_openmic import ensure_openmic_corpus

    root, embedded = _root(
        data, "OPENMIC_DIR", lambda: ensure_openmic_corpus(data.embedded.cache_dir or None, clips=data.embedded.clips)
    )
    dataset = read_openmic(root, valid_fraction=data.valid_fraction, seed=seed)
    rows = dataset.splits
    return ClipSet(
        name="openmic",
        root=root,
        embedded=embedded,
        classes=list(dataset.classes),
        paths={s: [dataset.audio_path(k) for k in dataset.keys[r]] for s, r in rows.items()},
        targets={s: dataset.targets[r] for s, r in rows.items()},
        observed={s: dataset.observed[r] for s, r in rows.items()},
        features={s: dataset.features[r] for s, r in rows.items()},
    )


def load_irmas(data, seed: int) -> ClipSet:
    from corpora.soundfont_irmas import ensure_irmas_corpus

    root, embedded = _root(
        data,
        "IRMAS_DIR",
        lambda: ensure_irmas_corpus(
            data.embedded.cache_dir or None,
            recordings=data.embedded.recordings,
            test_excerpts=data.embedded.test_excerpts,
        ),
    )
    dataset = read_irmas(root, valid_fraction=data.valid_fraction, seed=seed)
    targets = {s: dataset.targets(s) for s in dataset.splits}
    return ClipSet(
        name="irmas",
        root=root,
        embedded=embedded,
        classes=[CLASS_NAMES[c] for c in dataset.classes],
        paths={s: [e.path for e in excerpts] for s, excerpts in dataset.splits.items()},
        targets=targets,
        observed={s: np.ones_like(t, bool) for s, t in targets.items()},
        single_label=("train", "valid"),
    )


def load_nsynth(data, seed: int, *, target: str) -> ClipSet:
    """NSynth notes as a single-label task: `target` family (11 classes) or pitch (MIDI 0–127)."""
    from corpora.notes import load_corpus
    from corpora.nsynth import FAMILIES
    from overtone.audio import BadFileLog

    del seed  # the official splits
    corpus = load_corpus(data, bad_log=BadFileLog(data.max_bad_fraction))
    values = {split: np.array([getattr(n, target) for n in notes]) for split, notes in corpus.splits.items()}
    if target == "family":
        classes, labels = list(FAMILIES), values
    else:  # the pitches that occur, in order
        pitches = np.unique(np.concatenate(list(values.values())))
        classes, labels = [f"midi{p}" for p in pitches], {s: np.searchsorted(pitches, v) for s, v in values.items()}
    targets = {split: np.eye(len(classes), dtype=np.float32)[y] for split, y in labels.items()}
    return ClipSet(
        name=f"nsynth_{target}",
        root=corpus.root,
        embedded=corpus.embedded,
        classes=classes,
        paths={split: [n.path for n in notes] for split, notes in corpus.splits.items()},
        targets=targets,
        observed={split: np.ones_like(t, bool) for split, t in targets.items()},
        single_label=tuple(corpus.splits),
    )


def load_folder(data, seed: int) -> ClipSet:
    """Your own data (`corpora.folder`): class sub-folders under data.root, or data.manifest."""
    from corpora.folder import read_labelled_audio
    from corpora.soundfont_folder import ensure_folder_corpus

    root, embedded = Path(data.root or "."), False
    if not data.root and not data.manifest:
        if data.require_real:
            raise FileNotFoundError("no data given: set --config.data.root (class folders) or --config.data.manifest")
        root, embedded = ensure_folder_corpus(data.embedded.cache_dir or None, clips=data.embedded.clips), True
        log.warning(
            "No data given (data.root / data.manifest): using the EMBEDDED 4-class SoundFont folder in %s", root
        )
    fractions = dict(valid_fraction=data.valid_fraction, test_fraction=data.test_fraction)
    dataset = read_labelled_audio("" if data.manifest else root, manifest=data.manifest, seed=seed, **fractions)
    targets = {s: dataset.targets(s) for s in dataset.splits}
    return ClipSet(
        name="folder",
        root=dataset.root,
        embedded=embedded,
        classes=dataset.classes,
        paths={s: [path for path, _ in items] for s, items in dataset.splits.items()},
        targets=targets,
        observed={s: np.ones_like(t, bool) for s, t in targets.items()},
        single_label=() if dataset.multilabel else tuple(dataset.splits),
    )


TASKS = {
    "openmic": load_openmic,
    "irmas": load_irmas,
    "folder": load_folder,
    "nsynth_family": functools.partial(load_nsynth, target="family"),
    "nsynth_pitch": functools.partial(load_nsynth, target="pitch"),
}


def load_task(data, seed: int) -> ClipSet:
    if data.dataset not in TASKS:
        raise unknown_name("downstream dataset", data.dataset, TASKS, where="config.data.dataset")
    return TASKS[data.dataset](data, seed)
