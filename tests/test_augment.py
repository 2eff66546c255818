"""Augmentation: each effect does what it promises; the loader applies them deterministically."""

import numpy as np
import pytest
from conftest import nsynth_entry, tone, write_nsynth_split

from corpora import augment, nsynth
from corpora.augment import AudioEffects
from corpora.notes import NoteLoader, trim_silence
from overtone.audio import BadFileLog

RATE = 16000
T = np.arange(RATE) / RATE


def sine(freq, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * T)).astype(np.float32)


def peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * RATE / len(x)


def level_db(x):
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2))


def test_gain_scales_rms_exactly():
    x = sine(440)
    assert level_db(augment.gain(x, 6.0)) - level_db(x) == pytest.approx(6.0, abs=1e-4)


def test_noise_meets_the_target_snr():
    x = sine(440)
    noisy = augment.add_noise(x, 20.0, np.random.default_rng(0))
    assert level_db(x) - level_db(noisy - x) == pytest.approx(20.0, abs=1e-3)
    assert np.array_equal(augment.add_noise(np.zeros(100, np.float32), 10.0, np.random.default_rng(0)), np.zeros(100))


def test_lowpass_and_highpass_separate_tones():
    low, high = sine(200), sine(5000)
    assert level_db(augment.butterworth(high, 1000, RATE, "lowpass")[2000:]) < level_db(high) - 40
    assert level_db(augment.butterworth(low, 1000, RATE, "lowpass")[2000:]) == pytest.approx(level_db(low), abs=0.5)
    assert level_db(augment.butterworth(low, 2000, RATE, "highpass")[2000:]) < level_db(low) - 40
    assert level_db(augment.butterworth(high, 2000, RATE, "highpass")[2000:]) == pytest.approx(level_db(high), abs=0.5)


def test_delay_adds_two_echoes():
    impulse = np.zeros(RATE, np.float32)
    impulse[0] = 1.0
    y = augment.delay(impulse, 0.1, 0.5, RATE)
    assert np.flatnonzero(y).tolist() == [0, 1600, 3200]
    np.testing.assert_allclose(y[[0, 1600, 3200]], [1.0, 0.5, 0.25])


def test_pitch_shift_moves_the_tone_and_keeps_the_length():
    x = sine(440)
    y = augment.pitch_shift(x, 2.0, RATE)
    assert len(y) == len(x)
    assert peak_hz(y[: int(RATE / 2 ** (2 / 12)) - 200]) == pytest.approx(440 * 2 ** (2 / 12), abs=3)
    assert peak_hz(augment.pitch_shift(x, -2.0, RATE)) == pytest.approx(440 * 2 ** (-2 / 12), abs=3)


def test_reverb_tail_decays_at_the_requested_rt60():
    impulse = np.zeros(2 * RATE, np.float32)
    impulse[0] = 1.0
    y = augment.reverb(impulse, rt60=1.0, wet=1.0, rate=RATE, rng=np.random.default_rng(0))
    assert len(y) == len(impulse)
    early, late = level_db(y[1600:4800]), level_db(y[9600:12800])  # windows 0.5 s apart
    assert early - late == pytest.approx(30.0, abs=4.0)  # −60 dB per second


def test_effects_are_deterministic_and_respect_probabilities():
    x = sine(440) * np.linspace(1, 0, RATE, dtype=np.float32)
    always = AudioEffects({e: 1.0 for e in augment.EFFECTS})
    a = always(x, np.random.default_rng(5))
    b = always(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and not np.allclose(a, x)
    never = AudioEffects({})
    assert not never.active
    np.testing.assert_array_equal(never(x, np.random.default_rng(5)), x)
    with pytest.raises(KeyError, match="unknown audio effect"):
        AudioEffects({"flanger": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        AudioEffects({"gain": 2.0})


def test_trim_silence():
    x = np.concatenate([np.zeros(100), sine(440)[:1000], np.zeros(50)]).astype(np.float32)
    trimmed = trim_silence(x)
    assert len(trimmed) < 1000 and np.abs(trimmed[0]) > 0 and np.abs(trimmed[-1]) > 0
    assert len(trim_silence(np.zeros(10, np.float32))) == 0


def test_concatenation_joins_two_notes_of_the_same_instrument(tmp_path):
    notes = {}
    for pitch, freq in ((60, 261.6), (72, 523.3)):
        note_str = f"keyboard_acoustic_004-{pitch:03d}-100"
        wave = np.concatenate([tone(freq, 0.5), np.zeros(16000 * 3, np.float32)])  # 0.5 s of sound, then silence
        notes[note_str] = (nsynth_entry(note_str, instrument=4, family=4, source=0, pitch=pitch, velocity=100), wave)
    write_nsynth_split(tmp_path, "train", notes)
    parsed = nsynth.read_split(tmp_path, "train")
    loader = NoteLoader(16000, 0, BadFileLog(1.0), concat_prob=1.0, same_instrument={4: parsed})
    found_two = False
    for seed in range(20):
        example = loader(parsed[0], np.random.default_rng(seed))
        assert example["family"] == 4 and example["weight"] == 1.0
        halves = example["audio"][:7000], example["audio"][-7000:]
        freqs = {round(peak_hz(h) / 50) * 50 for h in halves if np.abs(h).max() > 0.01}
        found_two |= len(freqs) == 2  # trimmed notes back to back: both pitches inside one crop
    assert found_two
    plain = NoteLoader(16000, 0, BadFileLog(1.0))(parsed[0], None)
    assert np.abs(plain["audio"][9000:]).max() < 1e-3  # without concatenation: the note, then silence


def test_loader_applies_effects_in_training_only(tmp_path):
    note_str = "flute_acoustic_002-072-100"
    entry = nsynth_entry(note_str, instrument=2, family=2, source=0, pitch=72, velocity=100)
    write_nsynth_split(tmp_path, "train", {note_str: (entry, tone(523.3))})
    note = nsynth.read_split(tmp_path, "train")[0]
    loud = NoteLoader(16000, 0, BadFileLog(1.0), effects=AudioEffects({"gain": 1.0}))
    plain = NoteLoader(16000, 0, BadFileLog(1.0))
    np.testing.assert_array_equal(loud(note, None)["audio"], plain(note, None)["audio"])  # evaluation: clean
    trained, clean = loud(note, np.random.default_rng(0))["audio"], plain(note, None)["audio"]
    ratio = np.abs(trained).max() / np.abs(clean).max()
    assert 10 ** (-6 / 20) - 1e-6 <= ratio <= 10 ** (6 / 20) + 1e-6 and abs(ratio - 1) > 1e-3


def test_time_stretch_changes_tempo_keeps_pitch_and_length():
    from corpora.augment import time_stretch

    rate = 16000
    t = np.arange(rate * 2) / rate
    burst = np.where(t < 1.0, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)  # 1 s of tone, 1 s silence
    for factor in (1.25, 0.8):
        out = time_stretch(burst, factor)
        assert out.shape == burst.shape
        envelope = np.convolve(np.abs(out), np.ones(400) / 400, mode="same")
        sounding = np.count_nonzero(envelope > 0.5 * envelope.max()) / rate
        assert sounding == pytest.approx(1.0 / factor, abs=0.03)
        spectrum = np.abs(np.fft.rfft(out[: rate // 2]))
        assert abs(np.fft.rfftfreq(rate // 2, 1 / rate)[spectrum.argmax()] - 1000) < 10
