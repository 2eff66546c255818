"""Audio effects for training examples (Zhong et al. 2023's augmentations; docs/methods.md §4.1).

Applied in the input workers to each training crop, each effect with its own probability
(`data.augment.<effect>`), in a fixed order — pitch shift, gain, low-pass, high-pass, delay,
reverb, noise, time stretch — with parameters drawn from the example's RNG, so an augmented run is as
deterministic and resumable as a plain one. Zhong et al. name the effects and apply them
with probability 0.3; the parameter ranges below are ours:

| effect      | what it does                                                       |
|-------------|--------------------------------------------------------------------|
| pitch_shift | ±2 semitones by resampling (varispeed: time scales by the same factor), length kept |
| gain        | ×10^(g/20), g uniform in [−6, 6] dB                                 |
| lowpass     | 4th-order Butterworth, cut-off log-uniform in [1, 6] kHz            |
| highpass    | 4th-order Butterworth, cut-off log-uniform in [100, 1000] Hz        |
| delay       | two echoes at d and 2d, d in [50, 300] ms, gains a and a², a in [0.3, 0.6] |
| reverb      | convolution with exponentially decaying noise, RT60 in [0.2, 1.5] s, wet share [0.1, 0.5] |
| noise       | white noise at an SNR uniform in [10, 40] dB of the (processed) signal |
| time_stretch | tempo × r, r log-uniform in [0.8, 1.25], pitch kept (phase vocoder, librosa), length kept |

They run in the workers rather than on the device because filtering, resampling and long
convolutions are cheap in scipy/soxr and awkward in a jitted step, and the input pipeline has
ample headroom over the train step (see `python -m benchmarks`).
"""

from __future__ import annotations

import numpy as np
import soxr

from overtone.errors import BadValueError, UnknownNameError

EFFECTS = ("pitch_shift", "gain", "lowpass", "highpass", "delay", "reverb", "noise", "time_stretch")


def pitch_shift(x: np.ndarray, semitones: float, rate: int) -> np.ndarray:
    """Play the crop 2^(s/12) times faster by resampling: pitch moves s semitones."""
    factor = 2.0 ** (semitones / 12.0)
    shifted = soxr.resample(x, rate, rate / factor, quality="HQ").astype(np.float32)
    return _fit(shifted, len(x))


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return (x * 10.0 ** (db / 20.0)).astype(np.float32)


def butterworth(x: np.ndarray, cutoff: float, rate: int, kind: str) -> np.ndarray:
    import scipy.signal  # here, not at the top: importing it costs a second or two of every start-up

    sos = scipy.signal.butter(4, cutoff, btype=kind, fs=rate, output="sos")
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


def delay(x: np.ndarray, seconds: float, amount: float, rate: int) -> np.ndarray:
    d = int(seconds * rate)
    y = x.astype(np.float32).copy()
    for tap, scale in ((d, amount), (2 * d, amount**2)):
        if tap < len(x):
            y[tap:] += scale * x[:-tap]
    return y


def reverb(x: np.ndarray, rt60: float, wet: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(rt60 * rate)) / rate
    impulse = rng.standard_normal(len(t)) * 10.0 ** (-3.0 * t / rt60)  # −60 dB at rt60
    impulse /= np.sqrt(np.sum(impulse**2))
    import scipy.signal

    tail = scipy.signal.fftconvolve(x, impulse)[: len(x)]
    return ((1.0 - wet) * x + wet * tail).astype(np.float32)


def time_stretch(x: np.ndarray, rate: float) -> np.ndarray:
    """Tempo × `rate` at the same pitch (librosa's phase vocoder), cut or zero-padded to the input length."""
    import librosa

    out = librosa.effects.time_stretch(np.asarray(x, np.float32), rate=rate)
    return out[: len(x)] if len(out) >= len(x) else np.pad(out, (0, len(x) - len(out)))


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise scaled so that 10·log10(P_signal / P_noise) is exactly `snr_db`."""
    signal_power = float(np.mean(x.astype(np.float64) ** 2))
    if signal_power == 0.0:
        return x
    noise = rng.standard_normal(len(x))
    noise *= np.sqrt(signal_power / 10.0 ** (snr_db / 10.0) / np.mean(noise**2))
    return (x + noise).astype(np.float32)


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    return x[:length] if len(x) >= length else np.pad(x, (0, length - len(x)))


class AudioEffects:
    """Draw and apply effects with per-effect probabilities (dict effect → probability). The
    optional key `chain_prob` (default 1) is the probability that the chain runs at all, as in
    Zhong et al.'s code (`aug_p` 0.3 around a chain whose effects have probabilities of their own)."""

    def __init__(self, probabilities: dict[str, float], sample_rate: int = 16000):
        probabilities = dict(probabilities)
        self.chain_prob = float(probabilities.pop("chain_prob", 1.0))
        unknown = sorted(set(probabilities) - set(EFFECTS))
        if unknown:
            raise UnknownNameError(f"unknown audio effect(s) {unknown}; valid: {list(EFFECTS)}")
        if not all(0.0 <= p <= 1.0 for p in (*probabilities.values(), self.chain_prob)):
            raise BadValueError(f"effect probabilities must lie in [0, 1]: {probabilities}")
        self.probabilities = {e: float(probabilities.get(e, 0.0)) for e in EFFECTS}
        self.rate = sample_rate

    @property
    def active(self) -> bool:
        return self.chain_prob > 0 and any(self.probabilities.values())

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rate = self.rate
        if self.chain_prob < 1.0 and rng.random() >= self.chain_prob:
            return x
        for effect in EFFECTS:
            if rng.random() >= self.probabilities[effect]:
                continue
            if effect == "pitch_shift":
                x = pitch_shift(x, rng.uniform(-2.0, 2.0), rate)
            elif effect == "gain":
                x = gain(x, rng.uniform(-6.0, 6.0))
            elif effect == "lowpass":
                x = butterworth(x, float(np.exp(rng.uniform(np.log(1000), np.log(6000)))), rate, "lowpass")
            elif effect == "highpass":
                x = butterworth(x, float(np.exp(rng.uniform(np.log(100), np.log(1000)))), rate, "highpass")
            elif effect == "delay":
                x = delay(x, rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.6), rate)
            elif effect == "reverb":
                x = reverb(x, rng.uniform(0.2, 1.5), rng.uniform(0.1, 0.5), rate, rng)
            elif effect == "noise":
                x = add_noise(x, rng.uniform(10.0, 40.0), rng)
            else:
                x = time_stretch(x, float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))))
        return x
