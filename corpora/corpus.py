"""What a dataset builder hands to training: splits of records and how to load them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path


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
