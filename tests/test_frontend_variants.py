"""The general log-mel and multi-resolution front-ends, against librosa and against each other."""

import jax.numpy as jnp
import librosa
import numpy as np
import pytest
from flax import nnx

import encoders
from encoders.frontend import MelSpectrogram, MultiResolution, build_frontend

RATE = 16000


def signals():
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    return {"noise": 0.1 * rng.normal(size=t.size), "tone": 0.8 * np.sin(2 * np.pi * 440 * t)}


@pytest.mark.parametrize("name", ["noise", "tone"])
@pytest.mark.parametrize(("htk", "norm", "power"), [(False, "slaney", 2.0), (True, "", 1.0)])
def test_logmel_equals_librosa_melspectrogram(name, htk, norm, power):
    y = signals()[name].astype(np.float32)
    frontend = MelSpectrogram(
        window_length=400, hop_length=200, fft_length=512, num_bands=128, htk=htk, norm=norm, power=power
    )
    reference = librosa.feature.melspectrogram(
        y=y.astype(np.float64),
        sr=RATE,
        n_fft=512,
        hop_length=200,
        win_length=400,
        center=False,
        power=power,
        n_mels=128,
        fmin=0.0,
        fmax=8000.0,
        htk=htk,
        norm=norm or None,
    ).T
    # librosa centres the 400-sample window inside the 512-point frame: 56 samples later than ours
    ours = np.asarray(frontend(jnp.asarray(y[56:])))
    count = min(len(ours), len(reference))
    assert abs(len(ours) - len(reference)) <= 1
    # float64 STFT on both sides (as the VGGish front-end); the mel sum and log run in float32
    np.testing.assert_allclose(ours[:count], np.log(reference[:count] + 1e-6), atol=1e-4)


def test_multiresolution_channels_are_centred_single_resolution_spectrograms():
    y = jnp.asarray(signals()["noise"].astype(np.float32))[None]
    frontend = MultiResolution(windows=(256, 512, 1024), window_length=1024, hop_length=160, num_bands=64)
    stack = np.asarray(frontend(y))
    assert stack.shape == (1, frontend.num_frames(y.shape[-1]), 64, 3)
    for k, window in enumerate((256, 512, 1024)):
        single = MelSpectrogram(
            window_length=window, fft_length=1 << (window - 1).bit_length(), hop_length=160, num_bands=64
        )
        offset = (1024 - window) // 2
        expected = np.asarray(single(y[:, offset:]))[:, : stack.shape[1]]
        np.testing.assert_allclose(stack[..., k], expected, atol=1e-5)
    patches = np.asarray(frontend.patches(jnp.asarray(stack)))
    assert patches.shape == (1, stack.shape[1] // 96, 96, 64, 3)
    np.testing.assert_array_equal(patches[0, 1], stack[0, 96:192])


def test_a_multichannel_frontend_feeds_the_compact_encoder():
    frontend = build_frontend({"name": "multistft", "num_bands": 64})
    encoder = encoders.build_encoder({"name": "compact", "in_channels": frontend.channels}, rngs=nnx.Rngs(0))
    mono = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    assert encoders.parameter_count(encoder) - encoders.parameter_count(mono) == 3 * 3 * 2 * 32
    wave = jnp.asarray(signals()["tone"].astype(np.float32))[None]
    assert encoders.encode_clips(encoder, frontend, wave).shape == (1, 2, 128)
    with pytest.raises(ValueError, match=r"in_channels=3\) takes \(batch, frames, bands, channels\)"):
        encoder(jnp.zeros((2, 96, 64)))


def test_frontend_options_are_checked():
    with pytest.raises(KeyError, match="has no option"):
        build_frontend({"name": "logmel", "n_mels": 40})
    with pytest.raises(ValueError, match="window_length must equal the longest"):
        MultiResolution(windows=(256, 512), window_length=1024)


@pytest.mark.parametrize("name", ["noise", "tone"])
def test_cqt_equals_librosa_pseudo_cqt(name):
    from encoders.frontend import ConstantQ

    y = signals()[name]
    reference = librosa.pseudo_cqt(
        y=y,
        sr=RATE,
        hop_length=160,
        fmin=32.703,
        n_bins=84,
        bins_per_octave=12,
        tuning=0.0,
        pad_mode="constant",
        sparsity=0.0,
    ).T
    expected = np.log(reference + 1e-6)
    loud = reference > 1e-3 * reference.max()
    for dtype, floor in (("float32", 0.05), ("float64", 5e-3)):
        frontend = ConstantQ(stft_dtype=dtype)
        assert frontend.fft_length == frontend.window_length == 16384  # the C1 wavelet's length, rounded up
        ours = np.asarray(frontend(jnp.asarray(np.pad(y, frontend.fft_length // 2).astype(np.float32))))
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours[loud], expected[loud], atol=1e-4)
        np.testing.assert_allclose(ours, expected, atol=floor)  # near-empty bins of the pure tone
