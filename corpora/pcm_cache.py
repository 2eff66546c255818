"""The pre-decoded audio cache: every file of a corpus decoded once (and resampled to the
front-end's rate) into 16-bit PCM shards that training reads by memory-mapping.

    python -m pretrain.cache --config=nsynth_mixup        # build (or finish) it
    python -m pretrain --config=nsynth_mixup              # uses it: data.pcm_cache="auto"

Layout of the folder:
  shard-00000.pcm    raw little-endian int16 samples of up to `SHARD_FILES` files, end to end
  shard-00000.json   those files: path, size and mtime (ns) when decoded, offset and length in
                     samples; the unreadable ones with their error; the shard's SHA-256
  manifest.json      written last: format, sample rate, shard names. No manifest, no cache.

Building is resumable: a shard whose JSON lists the same files, unchanged, and whose PCM still
has the recorded SHA-256 is kept; the rest are decoded again (a PCM file is written to a
`.partial` name and renamed once complete, so a killed build never leaves a torn shard).
NSynth's 16-bit WAVs at 16 kHz are cached losslessly: soundfile reads int16 as x / 32768, and
the cache stores x back. Reading is stale-safe: `open_cache` stats every file the corpus will
read and refuses (or, for the automatic default, ignores with a warning) a cache that lacks
one or recorded another size or mtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from overtone.audio import AudioError, BadFileLog, decode_many, fit_length, load_audio
from overtone.disk import sha256_file
from overtone.errors import OvertoneError

log = logging.getLogger(__name__)

FORMAT = 1
SHARD_FILES = 2048  # NSynth: 2,048 notes × 4 s × 16 kHz × 2 bytes = 262 MB per shard


class StaleCacheError(OvertoneError, ValueError):
    """The cache was built from other files than the corpus now has."""


def default_dir(root: str | Path) -> Path:
    """Where `data.pcm_cache="auto"` looks: $OVERTONE_CACHE/pcm/<hash of the corpus root>."""
    from overtone.disk import cache_root

    key = hashlib.sha256(str(Path(root).expanduser().resolve()).encode()).hexdigest()[:16]
    return cache_root() / "pcm" / key


def _stat(path: str) -> list:
    info = os.stat(path)
    return [path, info.st_size, info.st_mtime_ns]


def _write_json(path: Path, value) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1) → int16, the inverse of soundfile's int16 → float32 (x / 32768)."""
    return np.clip(np.rint(wave * 32768.0), -32768, 32767).astype("<i2")


def build(paths, folder: str | Path, *, sample_rate: int, workers: int = 2, shard_files: int = SHARD_FILES) -> dict:
    """Decode `paths` into the cache at `folder` (resuming a partial one); returns a report."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # incomplete until rewritten at the end
    paths = sorted({str(p) for p in paths})
    names, report = [], {"files": len(paths), "shards_kept": 0, "shards_built": 0, "unreadable": 0, "bytes": 0}
    for number, start in enumerate(range(0, len(paths), shard_files)):
        name = f"shard-{number:05d}"
        stats = [_stat(p) for p in paths[start : start + shard_files]]
        meta = _reusable(folder, name, stats)
        action = "kept" if meta is not None else "built"
        if meta is None:
            meta = _build_shard(folder, name, stats, sample_rate, workers)
        report[f"shards_{action}"] += 1
        names.append(name)
        report["unreadable"] += len(meta["unreadable"])
        report["bytes"] += meta["bytes"]
        log.info("pcm cache %s: %s (%d files)", name, action, len(stats))
    for stray in sorted(folder.glob("shard-*.json")):  # shards of a larger, older corpus
        if stray.stem not in names:
            stray.unlink()
            stray.with_suffix(".pcm").unlink(missing_ok=True)
    for torn in folder.glob("*.partial"):  # left by a build killed mid-write
        torn.unlink()
    _write_json(folder / "manifest.json", {"format": FORMAT, "sample_rate": sample_rate, "shards": names})
    return report


def _reusable(folder: Path, name: str, stats: list) -> dict | None:
    meta_path, pcm = folder / f"{name}.json", folder / f"{name}.pcm"
    if not (meta_path.is_file() and pcm.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("files") != stats or pcm.stat().st_size != meta.get("bytes") or sha256_file(pcm) != meta.get("sha256"):
        return None
    return meta


def _build_shard(folder: Path, name: str, stats: list, sample_rate: int, workers: int) -> dict:
    paths = [s[0] for s in stats]
    bad_log, readable = BadFileLog(1.0), []
    offsets, lengths, position = [], [], 0
    digest = hashlib.sha256()
    partial = folder / f"{name}.pcm.partial"
    with open(partial, "wb") as f:
        waves = decode_many(paths, sample_rate, bad_log, readable, workers=workers)
        for wave in waves:
            data = to_pcm16(wave).tobytes()
            f.write(data)
            digest.update(data)
            offsets.append(position)
            lengths.append(len(wave))
            position += len(wave)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, folder / f"{name}.pcm")
    kept = [s for s, ok in zip(stats, readable, strict=True) if ok]
    meta = {
        "files": stats,
        "cached": [s[0] for s in kept],
        "offsets": offsets,
        "lengths": lengths,
        "unreadable": dict(bad_log.bad),
        "bytes": 2 * position,
        "sha256": digest.hexdigest(),
    }
    _write_json(folder / f"{name}.json", meta)
    return meta


class PcmCache:
    """A built cache, opened for reading: `load(path, …)` is `load_audio`'s drop-in."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"no pcm cache at {self.folder} (manifest.json missing: never built, or its build was "
                "interrupted); build it with `python -m pretrain.cache --config=NAME --out={self.folder}`"
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise StaleCacheError(f"{manifest_path}: format {manifest.get('format')}, expected {FORMAT}; rebuild it")
        self.sample_rate = int(manifest["sample_rate"])
        self.shards = list(manifest["shards"])
        self.index: dict[str, tuple[int, int, int]] = {}  # path → (shard, offset, length)
        self.recorded: dict[str, list] = {}  # path → [path, size, mtime_ns] when decoded
        self.unreadable: dict[str, str] = {}
        self.checksums: dict[int, str] = {}
        for number, name in enumerate(self.shards):
            meta = json.loads((self.folder / f"{name}.json").read_text())
            shard = self.folder / f"{name}.pcm"
            size = shard.stat().st_size if shard.is_file() else -1
            if size != meta["bytes"]:
                raise StaleCacheError(
                    f"pcm cache shard {shard} holds {size} bytes, its index says {meta['bytes']}: "
                    f"damaged or truncated; rebuild it with `python -m pretrain.cache` "
                    f"(--out={self.folder})"
                )
            self.checksums[number] = meta["sha256"]
            for stat in meta["files"]:
                self.recorded[stat[0]] = stat
            self.unreadable.update(meta["unreadable"])
            for path, offset, length in zip(meta["cached"], meta["offsets"], meta["lengths"], strict=True):
                self.index[path] = (number, offset, length)
        self._maps: dict[int, np.memmap | None] = {}  # None: a shard whose checksum failed
        self._verifying = threading.Lock()

    def stale(self, paths) -> list[str]:
        """The paths the cache lacks or recorded with another size or mtime than they have now."""
        changed = []
        for path in map(str, paths):
            recorded = self.recorded.get(path)
            try:
                if recorded is None or _stat(path) != recorded:
                    changed.append(path)
            except OSError:
                changed.append(path)
        return changed

    def _shard(self, number: int) -> np.memmap | None:
        """The shard's samples, checked against its SHA-256 when first used (None when damaged:
        its files are then decoded from their sources, never read as whatever the shard holds)."""
        if number not in self._maps:
            with self._verifying:
                if number not in self._maps:
                    path = self.folder / f"{self.shards[number]}.pcm"
                    if sha256_file(path) == self.checksums[number]:
                        self._maps[number] = np.memmap(path, dtype="<i2", mode="r")  # safe from many threads
                    else:
                        log.warning(
                            "pcm cache shard %s does not match its SHA-256: decoding its files from the "
                            "audio instead; rebuild the cache (python -m pretrain.cache)",
                            path,
                        )
                        self._maps[number] = None
        return self._maps[number]

    def load(self, path, *, sample_rate: int = 16000, offset: int = 0, num_samples: int | None = None) -> np.ndarray:
        """`overtone.audio.load_audio`, served from the cache (files it lacks are decoded)."""
        key = str(path)
        if sample_rate != self.sample_rate or key not in self.index:
            if key in self.unreadable:
                raise AudioError(f"cannot decode audio file {path}: {self.unreadable[key]} (when cached)")
            return load_audio(path, sample_rate=sample_rate, offset=offset, num_samples=num_samples)
        number, start, length = self.index[key]
        samples = self._shard(number)
        if samples is None:
            return load_audio(path, sample_rate=sample_rate, offset=offset, num_samples=num_samples)
        begin = start + min(offset, length)
        end = start + length if num_samples is None else min(begin + num_samples, start + length)
        wave = samples[begin:end].astype(np.float32) / 32768.0
        return wave if num_samples is None else fit_length(wave, num_samples)


def open_cache(setting: str, root: str | Path, paths) -> PcmCache | None:
    """The cache `data.pcm_cache` names for a corpus at `root` that will read `paths`:
    "" or "off" → none; "auto" → the default folder's, if built and fresh (else none, with a
    warning when it is stale); a folder → that cache, which must exist and be fresh."""
    if setting in ("", "off"):
        return None
    folder = default_dir(root) if setting == "auto" else Path(setting).expanduser()
    if setting == "auto" and not (folder / "manifest.json").is_file():
        return None
    try:
        cache = PcmCache(folder)
    except StaleCacheError as err:
        if setting != "auto":
            raise
        log.warning("%s; decoding the audio files instead", err)
        return None
    changed = cache.stale(paths)
    if changed:
        message = (
            f"pcm cache {folder} is stale: {len(changed)} file(s) of the corpus are missing from it or "
            f"changed since it was built (e.g. {changed[0]}); rebuild it with "
            f"`python -m pretrain.cache --config=NAME --out={folder}`"
        )
        if setting == "auto":
            log.warning("%s; decoding the audio files instead", message)
            return None
        raise StaleCacheError(message)
    log.info("reading audio from the pcm cache %s (%d files)", folder, len(cache.index))
    return cache
