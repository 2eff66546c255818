"""The VGGish log-mel front-end, computed in JAX on the training device.

Follows `mel_features.py` / `vggish_params.py` of the AudioSet VGGish release (docs/methods.md §2):
16 kHz mono waveform → frames of 400 samples every 160 (no centre padding) → periodic Hann
window → |rFFT| with 512 points (magnitude, not power) → 64 HTK-mel triangles between
125 and 7500 Hz computed on the 257 FFT bins in mel space, DC weight 0, no area
normalisation → log(mel + 0.01) → non-overlapping 96-frame patches.

Everything is a pure function of the waveform (no parameters), so it lives inside the jitted
train step and runs batched on whatever device trains.

Precision. The STFT runs in float64 by default (`stft_dtype`), scoped to the front-end with
`jax.enable_x64` while the rest of the step stays float32. The reason is the log floor:
log(mel + 0.01) magnifies an absolute error δ in a near-empty band to δ / 0.01, and a loud
pure tone leaves bands whose true energy is ~1e-8 of the peak — below float32's resolution.
Measured against the float64 reference: float32 STFT ≤ 5e-4 on loud tones (≤ 4e-5 on noise
and instrument notes); float64 STFT ≤ 3e-7 everywhere. The FFT is a few MFLOP per second of
audio, so float64 costs a few percent of a train step on CPU and GPU; on TPUs, where float64
is emulated, set `stft_dtype='float32'`.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from overtone.errors import BadValueError, UnknownNameError, unknown_name


def hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)


def mel_matrix(*, sample_rate: int, fft_length: int, num_bands: int, fmin: float, fmax: float) -> np.ndarray:
    """(fft_length // 2 + 1, num_bands) triangular weights, built in mel space as VGGish does.

    Each triangle rises linearly *in mel* from its lower edge to its centre and falls to its
    upper edge; librosa's `htk=True` triangles are linear in Hz instead, so the two differ
    slightly (bounded in tests).
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= fmin < fmax <= nyquist:
        raise BadValueError(f"mel range must satisfy 0 <= fmin < fmax <= {nyquist}; got {fmin}, {fmax}")
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, fft_length // 2 + 1))
    edges = np.linspace(hertz_to_mel(fmin), hertz_to_mel(fmax), num_bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin carries no band energy (as in VGGish)
    return weights


@dataclasses.dataclass(frozen=True)
class LogMel:
    """Batched log-mel spectrogram and patching; defaults are VGGish's exactly."""

    sample_rate: int = 16000
    window_length: int = 400
    hop_length: int = 160
    fft_length: int = 512
    num_bands: int = 64
    fmin: float = 125.0
    fmax: float = 7500.0
    log_offset: float = 0.01
    patch_frames: int = 96
    patch_hop: int = 96
    stft_dtype: str = "float64"

    def __post_init__(self):
        if self.fft_length < self.window_length:
            raise BadValueError(f"fft_length {self.fft_length} < window_length {self.window_length}")
        if self.stft_dtype not in ("float32", "float64"):
            raise BadValueError(f"stft_dtype must be 'float32' or 'float64', got {self.stft_dtype!r}")

    @property
    def patch_seconds(self) -> float:
        return self.patch_hop * self.hop_length / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.window_length:
            return 0
        return 1 + (num_samples - self.window_length) // self.hop_length

    def num_patches(self, num_samples: int) -> int:
        frames = self.num_frames(num_samples)
        return 0 if frames < self.patch_frames else 1 + (frames - self.patch_frames) // self.patch_hop

    def samples_for_patches(self, num_patches: int) -> int:
        """Shortest waveform that yields `num_patches` full patches."""
        frames = self.patch_frames + (num_patches - 1) * self.patch_hop
        return self.window_length + (frames - 1) * self.hop_length

    def window(self) -> np.ndarray:
        """Periodic Hann window (the 'symmetric=False' variant VGGish uses)."""
        n = np.arange(self.window_length)
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.window_length)

    def weights(self) -> np.ndarray:
        return mel_matrix(
            sample_rate=self.sample_rate,
            fft_length=self.fft_length,
            num_bands=self.num_bands,
            fmin=self.fmin,
            fmax=self.fmax,
        )

    def __call__(self, waveform: jax.Array) -> jax.Array:
        """(..., num_samples) float waveform in [-1, 1] → (..., frames, bands) log-mel."""
        magnitude = self.magnitude(waveform)
        # All mel weights and magnitudes are non-negative: float32 keeps this sum exact to ~1e-7.
        mel = jnp.matmul(magnitude, jnp.asarray(self.weights(), jnp.float32), precision="highest")
        return jnp.log(mel + self.log_offset)

    def magnitude(self, waveform: jax.Array) -> jax.Array:
        """(..., num_samples) → (..., frames, fft_length // 2 + 1) |STFT|, float32."""
        num_samples = waveform.shape[-1]
        frames = self.num_frames(num_samples)
        if frames == 0:
            raise ValueError(
                f"waveform of {num_samples} samples is shorter than one {self.window_length}-sample window"
            )
        starts = np.arange(frames) * self.hop_length
        index = starts[:, None] + np.arange(self.window_length)[None, :]
        with jax.enable_x64(self.stft_dtype == "float64"):
            dtype = jnp.dtype(self.stft_dtype)
            framed = waveform.astype(dtype)[..., index] * jnp.asarray(self.window(), dtype)
            return jnp.abs(jnp.fft.rfft(framed, n=self.fft_length, axis=-1)).astype(jnp.float32)

    def patches(self, logmel: jax.Array) -> jax.Array:
        """(B, frames, bands) → (B, P, patch_frames, bands), non-overlapping by default."""
        frames = logmel.shape[-2]
        count = 0 if frames < self.patch_frames else 1 + (frames - self.patch_frames) // self.patch_hop
        if count == 0:
            raise ValueError(f"{frames} frames are fewer than one {self.patch_frames}-frame patch")
        starts = np.arange(count) * self.patch_hop
        index = starts[:, None] + np.arange(self.patch_frames)[None, :]
        return logmel[..., index, :]


@dataclasses.dataclass(frozen=True)
class MelSpectrogram(LogMel):
    """A general log-mel spectrogram: librosa's mel filterbank (`htk` or Slaney scale, optional
    `norm="slaney"` area normalisation), magnitude raised to `power` (2 = power spectrum), any
    rate, window, hop, FFT size and band count. Equals `log(librosa.feature.melspectrogram(...,
    center=False) + log_offset)` with the window placed at the start of each FFT frame (tested)."""

    num_bands: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    power: float = 2.0
    htk: bool = False
    norm: str = "slaney"  # or "" for unnormalised triangles
    log_offset: float = 1e-6

    def weights(self) -> np.ndarray:
        import librosa

        return librosa.filters.mel(
            sr=self.sample_rate,
            n_fft=self.fft_length,
            n_mels=self.num_bands,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            norm=self.norm or None,
        ).T.astype(np.float64)

    def __call__(self, waveform: jax.Array) -> jax.Array:
        magnitude = self.magnitude(waveform)
        power = magnitude if self.power == 1.0 else magnitude**self.power
        mel = jnp.matmul(power, jnp.asarray(self.weights(), jnp.float32), precision="highest")
        return jnp.log(mel + self.log_offset)


@dataclasses.dataclass(frozen=True)
class MultiResolution(MelSpectrogram):
    """Several STFTs of different window lengths at one hop, each through its own mel filterbank
    to `num_bands` bands, stacked as channels: (..., frames, bands, len(windows)). All windows of
    a frame share its centre; the FFT size of each is its window length rounded up to a power
    of two. Patches are (patch_frames, bands, channels)."""

    windows: tuple[int, ...] = (256, 512, 1024)
    window_length: int = 1024  # the longest window: sets the frame count
    fft_length: int = 1024

    def __post_init__(self):
        super().__post_init__()
        if max(self.windows) != self.window_length:
            raise BadValueError(f"window_length must equal the longest of windows {self.windows}")

    @property
    def channels(self) -> int:
        return len(self.windows)

    def __call__(self, waveform: jax.Array) -> jax.Array:
        stack = []
        for window in self.windows:
            fft = 1 << (window - 1).bit_length()
            part = dataclasses.replace(self, windows=(window,), window_length=window, fft_length=fft)
            offset = (self.window_length - window) // 2
            frames = self.num_frames(waveform.shape[-1])
            start = waveform[..., offset : offset + window + (frames - 1) * self.hop_length]
            stack.append(MelSpectrogram.__call__(part, start))
        return jnp.stack(stack, axis=-1)

    def patches(self, logmel: jax.Array) -> jax.Array:
        """(B, frames, bands, C) → (B, P, patch_frames, bands, C)."""
        moved = jnp.moveaxis(logmel, -1, 1)  # (B, C, frames, bands)
        return jnp.moveaxis(super().patches(moved), 1, -1)


@dataclasses.dataclass(frozen=True)
class ConstantQ(LogMel):
    """A log constant-Q spectrogram: `num_bands` bins, `bins_per_octave` per octave from `fmin`,
    computed as librosa's `pseudo_cqt` does — the magnitude of one Hann-windowed STFT, long
    enough for the lowest bin's wavelet (`fft_length`, set from the filters), through the
    magnitudes of the constant-Q wavelets' spectra, scaled by 1/√fft_length — then
    log(· + log_offset). Frames are not centred (pad by fft_length // 2 to match librosa's
    centred frames; tested within 1e-4 wherever the response is within 60 dB of its peak).
    The STFT runs in float32 by default: its frames are ~1 s long (16384 samples for C1 at
    16 kHz), so float64 would double a large buffer; near-empty bins of pure tones then differ
    by up to 0.04 in log (5e-3 with `stft_dtype='float64'`)."""

    fmin: float = 32.703  # C1
    num_bands: int = 84  # seven octaves
    bins_per_octave: int = 12
    filter_scale: float = 1.0
    log_offset: float = 1e-6
    stft_dtype: str = "float32"

    def __post_init__(self):
        super().__post_init__()
        if self.fft_length != self._fft_size() or self.window_length != self.fft_length:
            object.__setattr__(self, "fft_length", self._fft_size())
            object.__setattr__(self, "window_length", self.fft_length)

    def _frequencies(self) -> np.ndarray:
        return self.fmin * 2.0 ** (np.arange(self.num_bands) / self.bins_per_octave)

    def _basis(self) -> tuple[np.ndarray, int]:
        import librosa

        basis, lengths = librosa.filters.wavelet(
            freqs=self._frequencies(), sr=self.sample_rate, filter_scale=self.filter_scale, pad_fft=True, norm=1
        )
        n_fft = max(basis.shape[1], int(2.0 ** (1 + np.ceil(np.log2(self.hop_length)))))
        return basis * (lengths[:, None] / n_fft), n_fft

    def _fft_size(self) -> int:
        return self._basis()[1]

    def weights(self) -> np.ndarray:
        basis, n_fft = self._basis()
        spectra = np.abs(np.fft.fft(basis, n=n_fft, axis=1)[:, : n_fft // 2 + 1])
        return (spectra / np.sqrt(n_fft)).T


@dataclasses.dataclass(frozen=True)
class Waveform(LogMel):
    """The raw waveform, for encoders that learn their own filters (`sinc`): every sample is a
    "frame" of one "band", so patches are (patch_frames samples, 1) — 15,600 samples (0.975 s)
    every 15,360 (0.96 s), VGGish's patch span — and all patch arithmetic is shared."""

    window_length: int = 1
    hop_length: int = 1
    fft_length: int = 1
    num_bands: int = 1
    patch_frames: int = 15600
    patch_hop: int = 15360

    def __call__(self, waveform: jax.Array) -> jax.Array:
        return waveform.astype(jnp.float32)[..., None]


FRONTENDS = {
    "vggish_logmel": LogMel,
    "logmel": MelSpectrogram,
    "multistft": MultiResolution,
    "cqt": ConstantQ,
    "waveform": Waveform,
}


def frontend_config(frontend: LogMel) -> dict:
    """The registry name and every field: what `build_frontend` rebuilds it from (bundles, caches)."""
    name = next(n for n, cls in FRONTENDS.items() if type(frontend) is cls)
    return {"name": name, **dataclasses.asdict(frontend)}


# Sane ranges of the numeric fields (inclusive): a value outside is refused before anything is
# allocated (an fft_length of 2**40 from a careless config or an edited manifest would not fit)
FIELD_RANGES = {
    "sample_rate": (1, 384_000),
    "window_length": (1, 1 << 16),
    "hop_length": (1, 1 << 16),
    "fft_length": (1, 1 << 16),
    "num_bands": (1, 1024),
    "fmin": (0.0, 192_000.0),
    "fmax": (0.0, 192_000.0),
    "log_offset": (0.0, 1e3),
    "patch_frames": (1, 1 << 20),
    "patch_hop": (1, 1 << 20),
    "power": (0.5, 4.0),
    "bins_per_octave": (1, 96),
    "filter_scale": (0.01, 100.0),
}


def build_frontend(config) -> LogMel:
    """Front-end from `config.frontend` (`name` plus field overrides of that front-end); every
    field's type and range checked first."""
    options = dict(config)
    name = options.pop("name", "vggish_logmel")
    if name not in FRONTENDS:
        raise unknown_name("front-end", name, FRONTENDS)
    cls = FRONTENDS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise UnknownNameError(f"front-end {name!r} has no option(s) {unknown}; valid: {sorted(fields)}")
    for key, value in options.items():
        _check_field(name, key, fields[key].type, value)
    return cls(**options)


def _check_field(name: str, key: str, kind: str, value) -> None:
    where = f"front-end {name!r} option {key}={repr(value)[:40]}"
    if kind in ("int", "float"):
        number = type(value) is int or (kind == "float" and type(value) is float and math.isfinite(value))
        low, high = FIELD_RANGES.get(key, (0, 1 << 20))
        if not number or not low <= value <= high:
            raise BadValueError(f"{where}: expected {'an integer' if kind == 'int' else 'a number'} in {low}..{high}")
    elif kind == "str" and not isinstance(value, str):
        raise BadValueError(f"{where}: expected a string")
    elif kind == "bool" and not isinstance(value, bool):
        raise BadValueError(f"{where}: expected true or false")
    elif kind.startswith("tuple"):
        items = value if isinstance(value, list | tuple) else ()
        if not 0 < len(items) <= 16 or not all(type(v) is int and 0 < v <= 1 << 16 for v in items):
            raise BadValueError(f"{where}: expected a list of up to 16 positive integers")
