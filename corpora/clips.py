"""Datasets as labelled clips, the form fine-tuning and probes use: a `ClipSet` holds audio paths,
targets and observed-label masks per split (train / valid / test), and for OpenMIC the shipped
VGGish features. The builders here are registered in `corpora.DATASETS`; each finds its root
through `corpora.corpus.find_root` (data.root, `$OPENMIC_DIR` / `$IRMAS_DIR` / `$NSYNTH_DIR`, the embedded
stand-in).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from corpora.corpus import ClipSet, find_root
from corpora.folder import read_labelled_audio
from corpora.irmas import CLASS_NAMES, read_irmas
from corpora.notes import load_corpus
from corpora.nsynth import FAMILIES
from corpora.openmic import OpenMICFormatError, read_openmic
from overtone.audio import BadFileLog

log = logging.getLogger(__name__)


def load_openmic(data, seed: int) -> ClipSet:
    from corpora.embedded.openmic import ensure_openmic_corpus

    root, embedded = find_root(
        data,
        what="OpenMIC-2018",
        variable="OPENMIC_DIR",
        expected="the unpacked openmic-2018/ folder (openmic-2018.npz, class-map.json, partitions/, audio/)",
        embedded=lambda: ensure_openmic_corpus(data.embedded.cache_dir or None, clips=data.embedded.clips),
    )
    split_file = _val_split(data, root)
    dataset = read_openmic(root, valid_fraction=data.valid_fraction, seed=seed, val_split=split_file)
    rows = dataset.splits
    how = f"AttentionMIC's {split_file}" if split_file else f"{data.valid_fraction:.0%} of split01_train, seed {seed}"
    log.info("OpenMIC validation: %d clips (%s)", len(rows["valid"]), how)
    return ClipSet(
        name="openmic",
        root=root,
        embedded=embedded,
        classes=list(dataset.classes),
        paths={s: [dataset.audio_path(k) for k in dataset.keys[r]] for s, r in rows.items()},
        targets={s: dataset.targets[r] for s, r in rows.items()},
        observed={s: dataset.observed[r] for s, r in rows.items()},
        features={s: dataset.features[r] for s, r in rows.items()},
        validation=how,
    )


def _val_split(data, root: Path) -> Path | None:
    """`data.val_split`: "auto" → ROOT/train_val.split where that file is (AttentionMIC's split,
    copied there by the user), "" or "off" → the seeded fraction, else a path that must exist."""
    value = data.get("val_split", "off")
    if value in ("", "off"):
        return None
    if value == "auto":
        found = Path(root) / "train_val.split"
        return found if found.is_file() else None
    if not Path(value).is_file():
        raise OpenMICFormatError(f"config.data.val_split={value}: no such file (AttentionMIC's data/train_val.split)")
    return Path(value)


def load_irmas(data, seed: int) -> ClipSet:
    from corpora.embedded.irmas import ensure_irmas_corpus

    root, embedded = find_root(
        data,
        what="IRMAS",
        variable="IRMAS_DIR",
        expected="a folder holding IRMAS-TrainingData/ and the IRMAS-TestingData-Part{1,2,3}/ folders",
        embedded=lambda: ensure_irmas_corpus(
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
    from corpora.embedded.folder import ensure_folder_corpus  # the renderers load only when needed

    if data.manifest:
        root, embedded = Path(data.manifest).parent, False
    else:
        root, embedded = find_root(
            data,
            what="labelled audio",
            variable=None,
            expected="a folder of class sub-folders, or give --config.data.manifest "
            "(a CSV with columns path,labels[,split])",
            embedded=lambda: ensure_folder_corpus(data.embedded.cache_dir or None, clips=data.embedded.clips),
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
