"""Freesound sounds with their uploaders' tags, for contrastive audio–tag pretraining.

Two layouts, chosen by `data.layout`:

FSD50K (Fonseca et al., the Zenodo release), `data.root` holding

    FSD50K.dev_audio/<fname>.wav          FSD50K.eval_audio/<fname>.wav
    FSD50K.metadata/dev_clips_info_FSD50K.json, eval_clips_info_FSD50K.json
        {"<fname>": {"title": …, "tags": ["…", …], "description": …, "license": …}, …}
    FSD50K.ground_truth/dev.csv  (fname,labels,mids,split with split = train | val)
    FSD50K.ground_truth/eval.csv (fname,labels,mids)

dev/train → train, dev/val → valid, eval → test. Only the uploader `tags` are used here;
the AudioSet-ontology labels of the ground truth define the splits.

A manifest (`data.manifest`): a CSV with a header holding `path` and `tags` columns and an
optional `split` column (train / valid / test). Paths are relative to the manifest's folder;
tags are separated by spaces, commas or semicolons. Without `split`, a fixed 10 % of the
rows (chosen by a hash of the path) is validation and the rest training.

Clips vary in length (FSD50K: 0.3–30 s). Training reads a random crop of
`data.segment_patches` patches anywhere in the clip; evaluation reads the start; a clip
shorter than the crop is zero-padded at the end.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np

from corpora.corpus import Corpus, find_root
from corpora.embedded.tagged import ensure_tagged_corpus
from corpora.scan import scan
from corpora.tags import TagVocabulary
from overtone.audio import BadFileLog, load_audio, load_crop
from overtone.disk import cache_root
from overtone.errors import BadValueError, OvertoneError

log = logging.getLogger(__name__)


class FreesoundFormatError(OvertoneError, ValueError):
    """Freesound data on disk does not have the expected layout; says what and where."""


@dataclasses.dataclass(frozen=True)
class Clip:
    key: str
    path: Path
    tags: tuple[str, ...]
    num_samples: int = 0  # at 16 kHz, known after the scan


def read_fsd50k(root: str | Path) -> dict[str, list[Clip]]:
    root = Path(root).expanduser()
    splits: dict[str, list[Clip]] = {"train": [], "valid": [], "test": []}
    for part in ("dev", "eval"):
        audio = root / f"FSD50K.{part}_audio"
        truth = root / "FSD50K.ground_truth" / f"{part}.csv"
        meta_path = root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json"
        for needed in (audio, truth, meta_path):
            if not needed.exists():
                raise FreesoundFormatError(
                    f"FSD50K layout: {needed} is missing (expected FSD50K.{{dev,eval}}_audio/, "
                    f"FSD50K.metadata/{{dev,eval}}_clips_info_FSD50K.json, FSD50K.ground_truth/{{dev,eval}}.csv)"
                )
        try:
            metadata = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise FreesoundFormatError(f"{meta_path} is not valid JSON: {str(err)[:200]}") from err
        if not isinstance(metadata, dict):
            raise FreesoundFormatError(f"{meta_path} must hold a JSON object keyed by clip id")
        for row_number, row in enumerate(_csv_rows(truth, required=("fname",)), 2):
            fname = row["fname"].strip()
            if not fname or fname in (".", "..") or "/" in fname or "\\" in fname:
                raise FreesoundFormatError(f"{truth} line {row_number}: fname {fname!r} is not a clip id")
            entry = metadata.get(fname)
            where = f"{meta_path}, clip {fname!r} (listed in {truth} line {row_number})"
            if not isinstance(entry, dict):
                raise FreesoundFormatError(f"{where}: no metadata entry")
            tags = entry.get("tags")
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise FreesoundFormatError(f"{where}: 'tags' must be a list of strings, got {tags!r}")
            split = "test" if part == "eval" else {"train": "train", "val": "valid"}.get(row.get("split", "").strip())
            if split is None:
                raise FreesoundFormatError(f"{truth} line {row_number}: split must be 'train' or 'val'")
            splits[split].append(Clip(f"{part}/{fname}", audio / f"{fname}.wav", tuple(tags)))
    return splits


def read_manifest(path: str | Path) -> dict[str, list[Clip]]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FreesoundFormatError(f"manifest {path} does not exist")
    splits: dict[str, list[Clip]] = {"train": [], "valid": [], "test": []}
    for row_number, row in enumerate(_csv_rows(path, required=("path", "tags")), 2):
        relative = row["path"].strip()
        if not relative:
            raise FreesoundFormatError(f"{path} line {row_number}: empty path")
        split = (row.get("split") or "").strip() or _hash_split(relative)
        if split not in splits:
            raise FreesoundFormatError(f"{path} line {row_number}: split {split!r} is not train, valid or test")
        tags = tuple(t for t in re.split(r"[\s,;]+", row["tags"]) if t)
        splits[split].append(Clip(relative, path.parent / relative, tags))
    return splits


def _hash_split(relative: str) -> str:
    return "valid" if int(hashlib.sha1(relative.encode()).hexdigest(), 16) % 10 == 0 else "train"


def _csv_rows(path: Path, *, required: tuple[str, ...]):
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise FreesoundFormatError(f"{path}: header lacks column(s) {missing}; found {reader.fieldnames}")
            for row in reader:
                yield {k: v or "" for k, v in row.items()}  # a short row: its missing cells are empty
    except (UnicodeDecodeError, csv.Error) as err:
        raise FreesoundFormatError(f"{path} is not a UTF-8 CSV file: {err}") from err


def load_freesound(data, *, bad_log: BadFileLog) -> Corpus:
    """FSD50K from `data.root` (or `$FSD50K_DIR`), a manifest from `data.manifest`, or — with
    neither — the embedded SoundFont set in the FSD50K layout (said loudly)."""
    if data.manifest:
        root, embedded, splits = Path(data.manifest).parent, False, read_manifest(data.manifest)
    else:
        root, embedded = find_root(
            data,
            what="Freesound data",
            variable="FSD50K_DIR",
            expected="an FSD50K folder (FSD50K.ground_truth/ + FSD50K.{dev,eval}_audio/), or give data.manifest",
            embedded=lambda: ensure_tagged_corpus(data.embedded.cache_dir or None),
        )
        splits = read_fsd50k(root)
    limits = dict(no_below=data.get("vocabulary_no_below", 1), no_above=data.get("vocabulary_no_above", 1.0))
    vocabulary = TagVocabulary.build((c.tags for c in splits["train"]), data.vocabulary_size, **limits)
    if not len(vocabulary):
        raise BadValueError(
            f"no tag of the {len(splits['train'])} training clips is in at least {limits['no_below']} clips and at "
            f"most {limits['no_above']:.0%} of them (data.vocabulary_no_below, data.vocabulary_no_above)"
        )
    report = {"root": str(root), "embedded": embedded, "vocabulary": len(vocabulary), "splits": {}}
    cache_dir = data.embedded.cache_dir or cache_root()
    out = {}
    for name, clips in splits.items():
        tagged = [c for c in clips if vocabulary.multi_hot(c.tags).any()]
        kept, silent, lengths = scan(
            tagged,
            bad_log=bad_log,
            silence_threshold=data.silence_threshold,
            cache_dir=cache_dir,
            workers=data.workers,
            what=f"{name} split",
        )
        out[name] = [dataclasses.replace(c, num_samples=lengths[c.key]) for c in kept]
        report["splits"][name] = {
            "listed": len(clips),
            "without_vocabulary_tags": len(clips) - len(tagged),
            "silent_dropped": silent,
            "used": len(out[name]),
        }
        log.info("Freesound %s: %s", name, report["splits"][name])
    for name in ("train", "valid"):
        if not out[name]:
            raise BadValueError(f"no usable clips in the {name} split of {root}: {report['splits'][name]}")
    return Corpus(
        root=Path(root),
        embedded=embedded,
        splits=out,
        report=report,
        num_classes={"tags": len(vocabulary)},
        make_loader=lambda n, _max_offset, bad, rate, **kw: ClipLoader(n, vocabulary, bad, rate, **kw),
        save_artifacts=lambda workdir: vocabulary.save(Path(workdir) / "tag_vocabulary.json"),
    )


class ClipLoader:
    """Clip → {'audio', 'tags' (multi-hot over the vocabulary), 'weight'}; random crops in training."""

    def __init__(
        self,
        num_samples: int,
        vocabulary: TagVocabulary,
        bad_log: BadFileLog,
        sample_rate: int = 16000,
        *,
        read=load_audio,
    ):
        self.num_samples, self.vocabulary, self.bad_log = num_samples, vocabulary, bad_log
        self.sample_rate = sample_rate
        self.read = read  # load_audio's signature; a PcmCache's `load` (corpora/pcm_cache.py)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        spare = max(0, clip.num_samples - self.num_samples)
        offset = int(rng.integers(0, spare + 1)) if rng is not None and spare else 0
        audio, weight = load_crop(
            clip.path, self.num_samples, self.bad_log, sample_rate=self.sample_rate, offset=offset, read=self.read
        )
        return {"audio": audio, "tags": self.vocabulary.multi_hot(clip.tags), "weight": weight}
