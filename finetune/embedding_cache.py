"""Frozen-encoder embeddings, computed once per (encoder, front-end, data) and cached on disk.

The cache key is a SHA-256 over the encoder's weight checksum, the front-end's parameters,
the patch hop, and every audio file's path, size and modification time: new weights, a
different hop or a changed file all make a new entry; the same run twice reuses it. An
entry is one `.npz` (no pickle) written to a temporary name and renamed when complete, so a
killed run never leaves a truncated entry behind. The entry also stores a SHA-256 over its
arrays and the key, verified (with every split's shape) before a single embedding is used: a
damaged, truncated or edited entry is computed again, never read as embeddings.

Audio that cannot be decoded is skipped and counted (`BadFileLog`); its clip is dropped from
the split, and the count is reported.

In a multi-process job, process 0 alone reads or computes the entry; the others wait for it
and read what it wrote (the cache folder must be shared, as the work directory is).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from encoders.embedding import embed_sequences
from encoders.frontend import LogMel
from overtone.audio import BadFileLog, decode_many
from overtone.disk import ensure_free, tree_sha256
from overtone.progress import track
from runtime import processes

log = logging.getLogger(__name__)

VERSION = 2  # 2: entries carry their own digest


def cache_key(checksum: str, frontend: LogMel, paths: dict[str, list[Path]]) -> str:
    files = [
        (split, str(path), *((s.st_size, s.st_mtime_ns) if (s := _stat(path)) else (-1, -1)))
        for split, items in sorted(paths.items())
        for path in items
    ]
    blob = json.dumps([VERSION, checksum, dataclasses.asdict(frontend), files])
    return hashlib.sha256(blob.encode()).hexdigest()


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


def sequences(
    encoder, frontend: LogMel, paths: dict[str, list[Path]], bad_log: BadFileLog, *, workers: int = 2
) -> dict[str, list[np.ndarray | None]]:
    """split → one (T, D) float32 sequence per path, None where the audio was unreadable."""
    out = {}
    for split, items in paths.items():
        readable: list[bool] = []  # filled as the decoder runs
        waves = decode_many(items, frontend.sample_rate, bad_log, readable, workers)
        embedded = iter(list(track(embed_sequences(encoder, frontend, waves), len(items), f"embed {split}")))
        out[split] = [next(embedded) if ok else None for ok in readable]
    return out


def cached_sequences(
    encoder, frontend: LogMel, checksum: str, paths: dict[str, list[Path]], cache_dir: Path, bad_log: BadFileLog
) -> tuple[dict[str, list[np.ndarray | None]], dict]:
    """`sequences(...)` through the on-disk cache; also returns {path, reused} for the run summary."""
    key = cache_key(checksum, frontend, paths)
    entry = Path(cache_dir) / f"embeddings-{key[:24]}.npz"
    if processes.primary():
        result = _read_or_compute(encoder, frontend, key, entry, paths, bad_log)
    # the others wait as long as embedding may take (a process that dies ends the job sooner)
    processes.barrier("embedding cache written", timeout_seconds=24 * 3600)
    if processes.primary():
        return result
    try:
        return _read_entry(entry, key, {split: len(items) for split, items in paths.items()}), {
            "path": str(entry),
            "reused": True,
        }
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise processes.DistributedError(
            f"process 0 wrote the embedding cache {entry} but this process cannot read it ({err}): set "
            "data.embedding_cache to a folder every process shares"
        ) from err


def _read_or_compute(encoder, frontend, key: str, entry: Path, paths, bad_log: BadFileLog):
    if entry.is_file():
        try:
            result = _read_entry(entry, key, {split: len(items) for split, items in paths.items()})
            log.info("embedding cache hit: %s", entry)
            return result, {"path": str(entry), "reused": True}
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:  # damaged, edited, pickled
            log.warning("embedding cache entry %s is unusable (%s); computing it again", entry, err)
    ensure_free(entry.parent, estimated_bytes(paths, frontend, encoder.embedding_dim), "the embedding cache")
    result = sequences(encoder, frontend, paths, bad_log)
    arrays = {}
    for split, items in result.items():
        width = next((s.shape[1] for s in items if s is not None), 0)
        arrays[f"{split}.lengths"] = np.array([-1 if s is None else len(s) for s in items], dtype=np.int64)
        stacked = [s for s in items if s is not None] or [np.zeros((0, width))]
        arrays[f"{split}.embeddings"] = np.concatenate(stacked).astype(np.float32)
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_name(f".{entry.name}.{os.getpid()}.partial.npz")
    np.savez(partial, digest=np.array(_digest(arrays, key)), **arrays)
    os.replace(partial, entry)
    log.info("embedding cache written: %s (%.1f MB)", entry, entry.stat().st_size / 1e6)
    return result, {"path": str(entry), "reused": False}


def _digest(arrays: dict[str, np.ndarray], key: str) -> str:
    return tree_sha256({"key": np.frombuffer(key.encode(), np.uint8), **arrays})


def _read_entry(entry: Path, key: str, counts: dict[str, int]) -> dict[str, list[np.ndarray | None]]:
    """The entry's sequences, once its digest and every split's shape check out (ValueError if not)."""
    with np.load(entry, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files if name != "digest"}
        digest = str(stored["digest"]) if "digest" in stored.files else None
    if digest != _digest(arrays, key):
        raise ValueError("its checksum does not match its contents")
    result = {}
    for split, count in counts.items():
        lengths, embeddings = arrays[f"{split}.lengths"], arrays[f"{split}.embeddings"]
        if lengths.shape != (count,) or embeddings.ndim != 2 or lengths[lengths >= 0].sum() != len(embeddings):
            raise ValueError(f"split {split!r} does not match its {count} clips")
        result[split] = _split_back(embeddings, lengths)
    return result


def estimated_bytes(paths: dict[str, list[Path]], frontend: LogMel, width: int, *, sample: int = 200) -> float:
    """Size of the cache entry, from the audio headers of up to `sample` files per split."""
    total = 0.0
    for items in paths.values():
        chosen = items[:: max(1, len(items) // sample)] if items else []
        seconds = []
        for path in chosen:
            try:
                seconds.append(sf.info(str(path)).duration)
            except (sf.LibsndfileError, RuntimeError, OSError):
                continue
        if seconds:
            total += np.mean(seconds) * len(items) / frontend.patch_seconds * width * 4
    return total


def _split_back(embeddings: np.ndarray, lengths: np.ndarray) -> list[np.ndarray | None]:
    out, offset = [], 0
    for length in lengths:
        if length < 0:
            out.append(None)
            continue
        out.append(embeddings[offset : offset + length])
        offset += length
    return out
