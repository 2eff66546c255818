"""Audio decoding: any file soundfile reads → mono float32 at the target rate, cropped or padded.

soundfile (libsndfile) decodes wav, flac and ogg, and mp3 where libsndfile ≥ 1.1 is linked;
soxr resamples. Files at the target rate are read partially (only the requested window), so
a 1-s crop of a 4-s NSynth note reads a quarter of the file.

Never block, never explode: only regular files are opened (a FIFO named like a note would
block the reader forever), and the header's duration is checked against `max_seconds` before
any sample is read, so a sparse ten-hour WAV of a few kilobytes is refused, not decoded into
gigabytes. Numbers are right or refused: NaN/Inf samples make the file unreadable, and samples
beyond full scale (float files peaking above 1.0) are clipped to [-1, 1], as the 16-bit PCM
cache must, so a file decodes to the same numbers with or without it.

A run never dies on one bad file: readers catch `AudioError`, and `BadFileLog` counts and
names what was skipped and stops the run only when more than a set fraction is bad.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from overtone.errors import OvertoneError

log = logging.getLogger(__name__)


class AudioError(OvertoneError, ValueError):
    """A file that cannot be decoded into finite audio; the message names the file."""


class TooManyBadFilesError(OvertoneError, RuntimeError):
    """More than the allowed fraction of a corpus could not be read."""


_LIMITS = {"max_seconds": 3600.0}  # the longest file decoded, per process (data.max_seconds via set_max_seconds)


def set_max_seconds(seconds: float) -> None:
    """The longest audio file any decode of this process accepts, by its header: a run sets it
    from `data.max_seconds` before it reads data."""
    _LIMITS["max_seconds"] = float(seconds)


def check_regular_file(path: Path) -> None:
    """AudioError unless `path` is a regular file (following links); never opens it."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        reason = getattr(err, "strerror", None) or err
        raise AudioError(f"cannot open audio file {str(path)[:300]!r}: {reason}") from err
    if not stat.S_ISREG(mode):
        raise AudioError(f"audio file {path} is not a regular file (a folder, FIFO, socket or device)")


def load_audio(
    path: str | Path,
    *,
    sample_rate: int = 16000,
    offset: int = 0,
    num_samples: int | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Mono float32 waveform at `sample_rate`, in [-1, 1].

    `offset` and `num_samples` are in samples *at the target rate*; the result has exactly
    `num_samples` samples (zero-padded past the end of the file) when that is given. A file
    longer than `max_seconds` (by its header; default: `set_max_seconds`) is refused before it
    is read.
    """
    path = Path(path)
    max_seconds = _LIMITS["max_seconds"] if max_seconds is None else max_seconds
    check_regular_file(path)
    try:
        info = sf.info(str(path))
        if info.samplerate <= 0 or info.frames < 0:
            raise AudioError(f"audio file {path} has a broken header ({info.samplerate} Hz, {info.frames} frames)")
        seconds = info.frames / info.samplerate
        if seconds > max_seconds:
            limit = f"data.max_seconds={max_seconds:g}"
            raise AudioError(f"audio file {path} lasts {seconds:.0f} s by its header, more than {limit}")
        if info.samplerate == sample_rate:
            stop = None if num_samples is None else offset + num_samples
            data, _ = sf.read(str(path), start=offset, stop=stop, dtype="float32", always_2d=True)
            wave = to_mono(data)
        else:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            wave = resample(to_mono(data), rate, sample_rate)
            wave = wave[offset:] if num_samples is None else wave[offset : offset + num_samples]
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as err:
        raise AudioError(f"cannot decode audio file {path}: {err}") from err
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"audio file {path} contains NaN or Inf samples")
    np.clip(wave, -1.0, 1.0, out=wave)
    if num_samples is not None:
        wave = fit_length(wave, num_samples)
    return wave


def decode_many(
    paths: Sequence[str | Path], sample_rate: int, bad_log: BadFileLog, readable: list[bool], workers: int = 2
) -> Iterator[np.ndarray]:
    """Waveforms of the readable `paths`, in order, decoded by `workers` threads a bounded way
    ahead; an unreadable file is skipped and counted in `bad_log`, and the fraction of bad
    files is judged once, on the whole list, when the iteration ends. `readable` gets one flag
    per path as the iteration reaches it."""

    def load(path):
        try:
            return load_audio(path, sample_rate=sample_rate)
        except AudioError as err:
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(paths), 32):
            block = paths[start : start + 32]
            for path, wave in zip(block, pool.map(load, block), strict=True):
                if isinstance(wave, AudioError):
                    bad_log.skip(path, str(wave), judge=False)
                    readable.append(False)
                    continue
                bad_log.ok()
                readable.append(True)
                yield wave
    bad_log.judge(readable.count(False), len(readable), f"{len(paths)} files")


def to_mono(data: np.ndarray) -> np.ndarray:
    """(samples, channels) → (samples,) by averaging the channels."""
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return wave.astype(np.float32, copy=False)
    return soxr.resample(wave, rate, target, quality="HQ").astype(np.float32, copy=False)


def fit_length(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """Crop the end off, or zero-pad the end to, exactly `num_samples`."""
    if wave.shape[0] >= num_samples:
        return wave[:num_samples]
    return np.pad(wave, (0, num_samples - wave.shape[0]))


def load_crop(
    path: str | Path,
    num_samples: int,
    bad_log: BadFileLog,
    *,
    sample_rate: int,
    offset: int | None = 0,
    rng: np.random.Generator | None = None,
    read: Callable[..., np.ndarray] = load_audio,
) -> tuple[np.ndarray, np.float32]:
    """(crop, weight): the one way a training or evaluation example gets its audio.

    `num_samples` samples from `offset` (zero-padded past the end); with `offset=None` the whole
    file is read and the crop starts at random when `rng` is given (training), else in the middle.
    A file that fails to decode gives zeros with weight 0 and is counted in `bad_log`, so a batch
    never fails for one bad file. `read` has `load_audio`'s signature (a PCM cache's `load`)."""
    try:
        if offset is None:
            wave = read(path, sample_rate=sample_rate)
            spare = max(0, len(wave) - num_samples)
            start = int(rng.integers(spare + 1)) if rng is not None else spare // 2
            audio = fit_length(wave[start:], num_samples)
        else:
            audio = read(path, sample_rate=sample_rate, offset=offset, num_samples=num_samples)
    except AudioError as err:
        bad_log.skip(path, str(err))
        return np.zeros(num_samples, np.float32), np.float32(0.0)
    bad_log.ok()
    return audio, np.float32(1.0)


class BadFileLog:
    """Thread-safe count of skipped files; raises once too large a fraction is bad.

    Each bad file is logged with its path and reason the first `max_named` times. Passes over a
    whole list (the decode scan of a split, embedding every clip) judge the fraction once at
    their end, on the whole list (`judge`); files found bad while training (the scan already
    passed them) are judged as they come, once `min_seen` were read, so a lost mount stops the
    run instead of training it on silence.
    """

    def __init__(self, max_fraction: float, *, min_seen: int = 100, max_named: int = 20):
        self.max_fraction = max_fraction
        self.min_seen = min_seen
        self.max_named = max_named
        self.seen = 0
        self.bad: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def ok(self) -> None:
        with self._lock:
            self.seen += 1

    def skip(self, path: str | Path, reason: str, *, judge: bool = True) -> None:
        with self._lock:
            self.seen += 1
            self.bad.append((str(path), reason))
            count = len(self.bad)
        if count <= self.max_named:
            log.warning("skipping unreadable audio (%d so far): %s", count, reason)
        elif count == self.max_named + 1:
            log.warning("more unreadable audio files; naming no more of them")
        if judge:
            self.check()

    def judge(self, bad: int, seen: int, what: str) -> None:
        """Raise if more than the allowed fraction of one whole list (`bad` of `seen`) was bad."""
        if seen and bad / seen > self.max_fraction:
            first = next((reason for _, reason in reversed(self.bad)), "")
            raise TooManyBadFilesError(
                f"{bad} of {seen} audio files were unreadable in {what} ({100 * bad / seen:.1f} %), more than the "
                f"allowed fraction {self.max_fraction} (data.max_bad_fraction); e.g. {first}"
            )

    def check(self, *, final: bool = False) -> None:
        """Raise if too many were bad: after `min_seen` files, or at any count when `final`."""
        with self._lock:
            seen, count = self.seen, len(self.bad)
        if (final or seen >= self.min_seen) and seen and count / seen > self.max_fraction:
            raise TooManyBadFilesError(
                f"{count} of {seen} audio files were unreadable, more than the allowed "
                f"fraction {self.max_fraction} (data.max_bad_fraction); first: {self.bad[0][1]}"
            )

    def summary(self) -> dict:
        return {"seen": self.seen, "skipped": len(self.bad), "skipped_files": self.bad[:1000]}
