"""The embedded corpus: real rendered notes in the NSynth layout, unseen instruments in valid/test."""

import collections

import numpy as np
import soundfile as sf

from corpora import nsynth
from corpora.embedded import soundfont


def test_layout_and_fields(embedded_cache):
    root = soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))
    splits = {s: nsynth.read_split(root, s) for s in nsynth.SPLITS}
    assert all(splits.values())
    note = splits["train"][0]
    info = sf.info(str(note.path))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 64000, "PCM_16")
    assert note.note_str == f"{note.instrument_str}-{note.pitch:03d}-{note.velocity:03d}"


def test_valid_and_test_instruments_are_unseen_in_train(embedded_cache):
    root = soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))
    instruments = {s: {n.instrument for n in nsynth.read_split(root, s)} for s in nsynth.SPLITS}
    assert not instruments["train"] & instruments["valid"]
    assert not instruments["train"] & instruments["test"]
    assert not instruments["valid"] & instruments["test"]


def test_every_family_in_every_split_at_real_pitches(embedded_cache):
    root = soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))
    for split in nsynth.SPLITS:
        notes = nsynth.read_split(root, split)
        assert set(collections.Counter(n.family for n in notes)) == set(range(11))
        for n in notes:
            low, high = soundfont.PITCH_RANGES[n.family_str]
            assert low <= n.pitch <= high and n.velocity == 100


def test_notes_sound_at_their_pitch(embedded_cache):
    """A flute note's strongest partial sits at the fundamental of its MIDI pitch."""
    root = soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))
    flute = [n for n in nsynth.read_split(root, "train") if n.family_str == "flute" and n.pitch == 72][0]
    wave, rate = sf.read(flute.path)
    segment = wave[4000:20000] * np.hanning(16000)
    peak_hz = np.argmax(np.abs(np.fft.rfft(segment))) * rate / 16000
    assert abs(peak_hz - 440.0 * 2 ** ((72 - 69) / 12)) < 15.0
    assert np.abs(wave[:48000]).max() > 0.01  # held for 3 s …
    assert np.abs(wave[-1600:]).max() < np.abs(wave[:48000]).max()  # … then released


def test_mapping_covers_families_once():
    programs = [p for family in soundfont.PROGRAMS.values() for p, _ in family]
    assert len(programs) == len(set(programs))
    assert set(soundfont.PROGRAMS) == set(nsynth.FAMILIES) == set(soundfont.PITCH_RANGES)


def test_rendering_is_cached(embedded_cache, monkeypatch):
    monkeypatch.setattr(soundfont, "render", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-rendered")))
    soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))


def flags_of(wave, program=0):
    return {q for q, f in zip(nsynth.QUALITIES, soundfont.describe(wave.astype(np.float32), program), strict=True) if f}


T = np.arange(64000) / 16000


def test_describe_bright_and_dark_by_spectral_centroid():
    held = (T < 3.0).astype(float)
    # 17 equal harmonics of 440 Hz (a pulse-like timbre): power centroid ≈ 9 × 440 Hz
    pulse = sum(np.sin(2 * np.pi * 440 * k * T) for k in range(1, 18)) * 0.05 * held
    assert "bright" in flags_of(pulse) and "dark" not in flags_of(pulse)
    saw = sum(np.sin(2 * np.pi * 440 * k * T) / k for k in range(1, 18)) * 0.2 * held
    assert not {"bright", "dark"} & flags_of(saw)  # power centroid ≈ 950 Hz: neither
    low = 0.5 * np.sin(2 * np.pi * 110 * T) * held
    assert "dark" in flags_of(low) and "bright" not in flags_of(low)


def test_describe_envelopes():
    tone = np.sin(2 * np.pi * 440 * T)
    pluck = tone * np.exp(-T / 0.05)  # peaks at once, halved long before 0.25 s, gone by 2.5 s
    assert {"fast_decay", "percussive"} <= flags_of(pluck)
    organ = 0.5 * tone * (T < 3.0)  # steady, stops dead at note-off
    assert not {"fast_decay", "percussive", "long_release"} & flags_of(organ)
    ringing = 0.5 * tone * np.where(T < 3.0, 1.0, np.exp(-(T - 3.0) / 1.0))  # rings on after note-off
    assert "long_release" in flags_of(ringing)
    assert "distortion" in flags_of(organ, program=30) and "distortion" not in flags_of(organ, program=19)


def test_rendered_notes_carry_measured_qualities(embedded_cache):
    root = soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,))
    notes = nsynth.read_split(root, "train")
    seen = collections.Counter(q for n in notes for q, f in zip(nsynth.QUALITIES, n.qualities, strict=True) if f)
    assert {"bright", "dark", "fast_decay", "percussive", "distortion"} <= set(seen)
    assert 0.2 < np.mean([any(n.qualities) for n in notes]) < 0.95
