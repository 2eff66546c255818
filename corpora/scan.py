"""Decode every record of a corpus once, up front: find unreadable files (counted and named
through a `BadFileLog`), drop silent ones, and learn each clip's length at the target rate.

Results are cached per file (keyed by path, size and mtime) under the cache folder, so a
second run over the same corpus reads no audio. Records need `.key` and `.path`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from overtone.audio import AudioError, BadFileLog, load_audio
from overtone.errors import BadValueError
from overtone.progress import track

log = logging.getLogger(__name__)


def scan(
    records: Sequence,
    *,
    bad_log: BadFileLog,
    silence_threshold: float,
    silence_measure: str = "peak",
    cache_dir: str | Path | None,
    workers: int = 4,
    sample_rate: int = 16000,
    what: str = "one split",
) -> tuple[list, int, dict[str, int]]:
    """(readable non-silent records, number of silent ones, key → length in samples). A record is
    silent when its `silence_measure` — "peak" |amplitude| or "mean_abs" (mean |amplitude|, Zhong
    et al.'s test, with threshold 5e-4) — is at or below `silence_threshold`. Stops with
    TooManyBadFilesError when more than the allowed fraction of `records` (`what`, for the
    message) is unreadable."""
    cache = _Cache(cache_dir, records, sample_rate)
    if silence_measure not in MEASURES:
        raise BadValueError(f"unknown data.silence_measure {silence_measure!r}; valid: {list(MEASURES)}")
    results: dict[str, list] = {}  # key → [peak, length, mean |amplitude|]

    def measure(record):
        hit = cache.get(record)
        if hit is not None:
            return hit
        try:
            wave = load_audio(record.path, sample_rate=sample_rate)
        except AudioError as err:
            return str(err)
        magnitude = np.abs(wave)
        return [
            float(np.max(magnitude, initial=0.0)),
            int(wave.shape[0]),
            float(np.mean(magnitude)) if len(wave) else 0.0,
        ]

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        measured = track(pool.map(measure, records), len(records), "decode scan")
        for record, result in zip(records, measured, strict=True):
            cache.put(record, result)
            if isinstance(result, str):
                bad_log.skip(record.path, result, judge=False)  # judged below, on the whole list
            else:
                bad_log.ok()
                results[record.key] = result
    cache.save()
    bad_log.judge(len(records) - len(results), len(records), what)
    column = MEASURES[silence_measure]
    kept = [r for r in records if r.key in results and results[r.key][column] > silence_threshold]
    return kept, len(results) - len(kept), {k: result[1] for k, result in results.items()}


MEASURES = {"peak": 0, "mean_abs": 2}  # → position in a scan result


class _Cache:
    def __init__(self, cache_dir, records: Sequence, sample_rate: int):
        self.entries: dict = {}
        self.path = None
        if cache_dir and len(records):
            folder = str(Path(records[0].path).parent.resolve())
            digest = hashlib.sha1(f"scan-v3:{folder}@{sample_rate}".encode()).hexdigest()[:16]
            self.path = Path(cache_dir) / "scans" / f"{digest}.json"
            if self.path.is_file():
                try:
                    self.entries = json.loads(self.path.read_text())
                except json.JSONDecodeError:
                    log.warning("ignoring unreadable scan cache %s", self.path)

    @staticmethod
    def _stamp(record):
        try:
            st = os.stat(record.path)
            return [st.st_size, st.st_mtime_ns]
        except OSError:
            return None

    def get(self, record):
        entry = self.entries.get(record.key)
        stamp = self._stamp(record)
        if entry is not None and stamp is not None and entry[0] == stamp:
            return entry[1]
        return None

    def put(self, record, result) -> None:
        stamp = self._stamp(record)
        if stamp is not None:
            self.entries[record.key] = [stamp, result]

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")  # processes sharing the cache
        tmp.write_text(json.dumps(self.entries))
        tmp.replace(self.path)
