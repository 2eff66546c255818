"""The JAX VGGish log-mel against an independent float64 numpy derivation and librosa."""

import math

import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from corpora.embedded import soundfont
from encoders.frontend import LogMel, build_frontend


def reference_logmel(x: np.ndarray) -> np.ndarray:
    """VGGish's recipe re-derived by hand: explicit frames, DFT matrix, loop-built triangles."""
    rate, win, hop, nfft, bands = 16000, 400, 160, 512, 64
    count = 1 + (len(x) - win) // hop
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / win) for i in range(win)])
    frames = np.stack([x[i * hop : i * hop + win] for i in range(count)]).astype(np.float64) * window
    dft = np.exp(-2j * np.pi * np.outer(np.arange(win), np.arange(nfft // 2 + 1)) / nfft)
    magnitude = np.abs(frames @ dft)

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    edges = [mel(125) + (mel(7500) - mel(125)) * i / (bands + 1) for i in range(bands + 2)]
    weights = np.zeros((nfft // 2 + 1, bands))
    for b in range(bands):
        lo, centre, hi = edges[b : b + 3]
        for k in range(1, nfft // 2 + 1):  # bin 0 (DC) keeps weight 0
            m = mel(k * (rate / 2) / (nfft // 2))
            if lo < m <= centre:
                weights[k, b] = (m - lo) / (centre - lo)
            elif centre < m < hi:
                weights[k, b] = (hi - m) / (hi - centre)
    return np.log(magnitude @ weights + 0.01)


def _signals():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    synth = __import__("tinysoundfont").Synth(samplerate=16000)
    sfid = synth.sfload(str(soundfont.soundfont_path()))
    notes = {}
    for program, pitch in ((0, 60), (40, 67), (73, 84), (32, 36)):
        synth.program_select(0, sfid, 0, program)
        notes[f"gm{program}_p{pitch}"] = soundfont.render_note(synth, pitch, 100)[:16000]
    return {
        "white_noise": rng.uniform(-0.5, 0.5, 16000),
        "quiet_noise": rng.normal(0, 1e-3, 16000),
        "tone_125hz": 0.5 * np.sin(2 * np.pi * 125 * t),
        "tone_1khz": 0.9 * np.sin(2 * np.pi * 1000 * t),
        "tone_7khz": 0.3 * np.sin(2 * np.pi * 7000 * t),
        "chirp": 0.5 * np.sin(2 * np.pi * (100 + 3000 * t) * t),
        "silence": np.zeros(16000),
        **notes,
    }


SIGNALS = _signals()


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_matches_numpy_reference(name):
    x = SIGNALS[name].astype(np.float32)
    got = np.asarray(LogMel()(jnp.asarray(x)[None]))[0]
    want = reference_logmel(x.astype(np.float64))
    assert got.shape == want.shape == (98, 64)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 1e-4


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_float32_stft_bounds(name):
    """The float32 STFT (for TPUs) is within 1e-4 except on loud pure tones (see frontend.py)."""
    x = SIGNALS[name].astype(np.float32)
    got = np.asarray(LogMel(stft_dtype="float32")(jnp.asarray(x)[None]))[0]
    error = np.max(np.abs(got - reference_logmel(x.astype(np.float64))))
    pure_tone = name.startswith("tone") or name == "chirp"
    assert error <= (1e-3 if pure_tone else 1e-4)


def test_batched_equals_one_at_a_time():
    batch = np.stack([SIGNALS["white_noise"], SIGNALS["gm0_p60"]]).astype(np.float32)
    fe = LogMel()
    together = np.asarray(fe(jnp.asarray(batch)))
    for i in range(2):
        np.testing.assert_allclose(together[i], np.asarray(fe(jnp.asarray(batch[i]))), atol=1e-5)


def test_nsynth_note_gives_398_frames_and_4_patches():
    fe = LogMel()
    assert fe.num_frames(64000) == 398
    assert fe.num_patches(64000) == 4
    patches = fe.patches(fe(jnp.zeros((2, 64000))))
    assert patches.shape == (2, 4, 96, 64)
    assert fe.samples_for_patches(1) == 15600 and fe.num_patches(15600) == 1 and fe.num_patches(15599) == 0


def test_patches_are_consecutive_96_frame_blocks():
    fe = LogMel()
    logmel = jnp.arange(300 * 64, dtype=jnp.float32).reshape(1, 300, 64)
    patches = np.asarray(fe.patches(logmel))
    assert patches.shape == (1, 3, 96, 64)
    np.testing.assert_array_equal(patches[0, 2], np.asarray(logmel[0, 192:288]))


def test_mel_matrix_close_to_librosa_htk():
    """librosa's HTK triangles are linear in Hz, VGGish's in mel: close, not equal."""
    ours = LogMel().weights()
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True, norm=None).T
    difference = np.abs(ours - theirs)
    assert difference.max() < 0.01
    assert difference.max() > 1e-4  # they do differ by construction
    assert np.all(ours[0] == 0) and np.all(ours >= 0)
    # on real magnitudes the log-mel of the two banks differ by under 0.02 nats
    x = SIGNALS["white_noise"]
    frames = np.stack([x[i * 160 : i * 160 + 400] for i in range(98)]) * LogMel().window()
    magnitude = np.abs(np.fft.rfft(frames, 512))
    assert np.abs(np.log(magnitude @ ours + 0.01) - np.log(magnitude @ theirs + 0.01)).max() < 0.02


def test_short_waveform_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="shorter than one 400-sample window"):
        LogMel()(jnp.zeros((1, 399)))
    with pytest.raises(ValueError, match="fewer than one 96-frame patch"):
        LogMel().patches(jnp.zeros((1, 95, 64)))
    with pytest.raises(KeyError, match="registered"):
        build_frontend({"name": "gammatone"})
    with pytest.raises(KeyError, match="no option"):
        build_frontend({"name": "vggish_logmel", "hop": 10})
