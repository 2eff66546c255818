"""Audio decoding: formats, down-mix, resampling, crop/pad, and bad files."""

import numpy as np
import pytest
import soundfile as sf

from overtone.audio import AudioError, BadFileLog, TooManyBadFilesError, fit_length, load_audio, load_crop


def sine(freq, rate, seconds=1.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        ("wav", "PCM_16", 1e-4),
        ("wav", "FLOAT", 1e-7),
        ("flac", "PCM_24", 1e-6),
        ("ogg", "VORBIS", 0.05),
    ],
)
def test_formats_decode_to_the_written_signal(tmp_path, suffix, subtype, tolerance):
    wave = sine(440, 16000)
    path = tmp_path / f"a.{suffix}"
    sf.write(path, wave, 16000, subtype=subtype)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == wave.shape
    assert np.sqrt(np.mean((got - wave) ** 2)) < tolerance


def test_mp3_when_libsndfile_supports_it(tmp_path):
    if "MP3" not in sf.available_formats():
        with pytest.raises(AudioError):
            path = tmp_path / "a.mp3"
            path.write_bytes(b"ID3" + bytes(100))
            load_audio(path)
        return
    path = tmp_path / "a.mp3"
    sf.write(path, sine(440, 16000, amp=0.3), 16000, format="MP3")
    got = load_audio(path)
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * 16000 / len(got) - 440) < 5


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = sine(440, 16000), sine(1000, 16000, amp=0.2)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-7)


def test_resampling_44100_to_16000_keeps_the_tone(tmp_path):
    """A 1 kHz tone at 44.1 kHz comes out as the analytic 1 kHz tone at 16 kHz."""
    sf.write(tmp_path / "r.wav", sine(1000, 44100, seconds=2.0), 44100, subtype="FLOAT")
    got = load_audio(tmp_path / "r.wav", sample_rate=16000)
    assert abs(len(got) - 32000) <= 1
    want = sine(1000, 16000, seconds=2.0)
    middle = slice(1000, 31000)  # away from the filter's edge transients
    assert np.max(np.abs(got[middle] - want[: len(got)][middle])) < 1e-3


def test_offset_and_length_crop_and_pad(tmp_path):
    wave = np.arange(16000, dtype=np.float32) / 16000
    sf.write(tmp_path / "c.wav", wave, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "c.wav", offset=100, num_samples=50), wave[100:150])
    padded = load_audio(tmp_path / "c.wav", offset=15990, num_samples=20)
    np.testing.assert_array_equal(padded, np.concatenate([wave[15990:], np.zeros(10, np.float32)]))
    np.testing.assert_array_equal(fit_length(wave, 10), wave[:10])


def test_load_crop_is_the_one_crop_for_every_stage(tmp_path):
    """Against numpy slicing: a given offset; the whole file cropped at a random start (the start
    an identically seeded generator draws in [0, spare]) or in the middle; zero padding of a short
    file; a bad file as zeros with weight 0, counted."""
    wave = np.arange(16000, dtype=np.float32) / 16000
    sf.write(tmp_path / "c.wav", wave, 16000, subtype="FLOAT")
    bad_log = BadFileLog(1.0)
    crop, weight = load_crop(tmp_path / "c.wav", 100, bad_log, sample_rate=16000, offset=250)
    np.testing.assert_array_equal(crop, wave[250:350])
    assert weight == 1.0 and crop.dtype == np.float32
    crop, _ = load_crop(tmp_path / "c.wav", 100, bad_log, sample_rate=16000, offset=None)
    np.testing.assert_array_equal(crop, wave[(16000 - 100) // 2 :][:100])
    crop, _ = load_crop(tmp_path / "c.wav", 100, bad_log, sample_rate=16000, offset=None, rng=np.random.default_rng(7))
    start = int(np.random.default_rng(7).integers(16000 - 100 + 1))
    np.testing.assert_array_equal(crop, wave[start : start + 100])
    crop, _ = load_crop(tmp_path / "c.wav", 16010, bad_log, sample_rate=16000, offset=None)
    np.testing.assert_array_equal(crop, np.concatenate([wave, np.zeros(10, np.float32)]))
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    crop, weight = load_crop(tmp_path / "bad.wav", 100, bad_log, sample_rate=16000, offset=None)
    assert weight == 0.0 and not crop.any() and crop.shape == (100,)
    assert bad_log.seen == 5 and len(bad_log.bad) == 1 and "bad.wav" in bad_log.bad[0][0]


@pytest.mark.parametrize("content", [b"", b"not audio at all" * 10, b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_unreadable_files_raise_with_the_path(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="broken.wav"):
        load_audio(path)


def test_missing_file_and_nan_samples(tmp_path):
    with pytest.raises(AudioError, match="nowhere.wav"):
        load_audio(tmp_path / "nowhere.wav")
    wave = sine(440, 16000)
    wave[5] = np.nan
    sf.write(tmp_path / "nan.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        load_audio(tmp_path / "nan.wav")


def test_bad_file_log_counts_and_stops_past_the_fraction():
    log = BadFileLog(0.05, min_seen=20)
    for _ in range(19):
        log.ok()
    log.skip("a.wav", "broken")  # 1 of 20 = 5 %: allowed
    assert log.summary()["skipped"] == 1
    with pytest.raises(RuntimeError, match="2 of 21 audio files were unreadable"):
        log.skip("b.wav", "broken")


def test_bad_file_log_waits_for_min_seen_unless_final():
    log = BadFileLog(0.01, min_seen=100)
    log.skip("a.wav", "broken")  # 1 of 1, but too early to judge
    with pytest.raises(RuntimeError, match="1 of 1"):
        log.check(final=True)


def test_only_regular_files_are_opened_so_a_fifo_never_blocks(tmp_path):
    import os

    fifo = tmp_path / "keyboard_acoustic_004-060-127.wav"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(AudioError, match="is not a regular file"):
        load_audio(fifo)
    with pytest.raises(AudioError, match="is not a regular file"):
        load_audio(tmp_path)


def test_a_sparse_ten_hour_wav_is_refused_by_its_header_before_any_sample_is_read(tmp_path):
    """A header claiming 10 h over a few kilobytes on disk: refused without decoding (a decode
    would allocate gigabytes); the limit is data.max_seconds."""
    import resource
    import struct

    path = tmp_path / "long.wav"
    data = 16000 * 36000 * 2  # ten hours of 16-bit mono at 16 kHz
    with open(path, "wb") as f:
        f.write(
            b"RIFF"
            + struct.pack("<I", 36 + data)
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        )
        f.write(b"data" + struct.pack("<I", data))
        f.truncate(44 + data)  # a hole: a few kilobytes on disk
    assert sf.info(str(path)).duration == 36000 and path.stat().st_blocks * 512 < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(AudioError, match=r"lasts 36000 s by its header, more than data.max_seconds=3600"):
        load_audio(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing was decoded
    assert load_audio(path, max_seconds=40000, num_samples=16000).shape == (16000,)  # a raised limit reads it


def test_samples_beyond_full_scale_are_clipped_as_the_pcm_cache_clips_them(tmp_path):
    wave = sine(440, 16000, amp=1.7)
    sf.write(tmp_path / "loud.wav", wave, 16000, subtype="FLOAT")
    got = load_audio(tmp_path / "loud.wav")
    np.testing.assert_array_equal(got, np.clip(wave, -1.0, 1.0))


def test_the_bad_file_limit_is_judged_on_the_whole_list():
    """2 bad files among the first 101 of a 484-file split (3 bad in all, 0.6 %) pass a 1 % limit;
    4 % bad is refused with both counts."""
    log = BadFileLog(0.01)
    for i in range(484):
        log.skip(f"f{i}.wav", "bad", judge=False) if i in (3, 50, 400) else log.ok()
    log.judge(3, 484, "NSynth train")
    with pytest.raises(TooManyBadFilesError, match=r"20 of 484 audio files were unreadable in NSynth train \(4.1 %\)"):
        log.judge(20, 484, "NSynth train")
