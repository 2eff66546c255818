"""The pre-decoded PCM cache (corpora/pcm_cache.py): lossless for 16-bit WAV, equal to
load_audio otherwise, resumable, checksummed, and never silently stale."""

import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import soxr

from corpora.pcm_cache import PcmCache, StaleCacheError, build, open_cache
from overtone.audio import AudioError, load_audio


@pytest.fixture
def files(tmp_path):
    """Five 16-bit 16 kHz WAVs (NSynth's format), a 44.1 kHz stereo float WAV, and garbage."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = []
    for i in range(5):
        path = folder / f"note{i}.wav"
        sf.write(path, rng.uniform(-0.9, 0.9, 16000 + 1000 * i), 16000, subtype="PCM_16")
        paths.append(path)
    stereo = folder / "stereo.wav"
    sf.write(stereo, rng.uniform(-0.5, 0.5, (44100, 2)), 44100, subtype="FLOAT")
    garbage = folder / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wav")
    return [*paths, stereo, garbage]


def test_reads_equal_load_audio(files, tmp_path):
    report = build(files, tmp_path / "cache", sample_rate=16000, shard_files=3)
    assert report == {"files": 7, "shards_kept": 0, "shards_built": 3, "unreadable": 1, "bytes": report["bytes"]}
    cache = PcmCache(tmp_path / "cache")
    for path in files[:5]:  # 16-bit sources: bit-identical, whole files and crops past the end
        np.testing.assert_array_equal(cache.load(path), load_audio(path))
        for offset, count in ((0, 15600), (900, 15600), (18000, 4000), (30000, 100)):
            np.testing.assert_array_equal(
                cache.load(path, offset=offset, num_samples=count), load_audio(path, offset=offset, num_samples=count)
            )
    # a 44.1 kHz stereo file is cached resampled: equal to load_audio up to 16-bit rounding
    data, _ = sf.read(files[5], dtype="float32")
    expected = soxr.resample(data.mean(axis=1), 44100, 16000)
    assert np.max(np.abs(cache.load(files[5]) - expected)) <= 1 / 32768 + 1e-7
    with pytest.raises(AudioError, match="garbage.wav.*when cached"):
        cache.load(files[6])
    # another rate than the cache's: decoded from the file
    np.testing.assert_array_equal(cache.load(files[0], sample_rate=8000), load_audio(files[0], sample_rate=8000))


def test_rebuild_keeps_what_is_intact_and_redoes_the_rest(files, tmp_path):
    folder = tmp_path / "cache"
    build(files, folder, sample_rate=16000, shard_files=3)
    # a build killed mid-way: no manifest, a torn .partial, and one shard whose bytes changed
    (folder / "manifest.json").unlink()
    (folder / "shard-00002.pcm.partial").write_bytes(b"torn")
    data = bytearray((folder / "shard-00001.pcm").read_bytes())
    data[100] ^= 0xFF
    (folder / "shard-00001.pcm").write_bytes(bytes(data))
    with pytest.raises(FileNotFoundError, match="python -m pretrain.cache"):
        PcmCache(folder)
    report = build(files, folder, sample_rate=16000, shard_files=3)
    assert (report["shards_kept"], report["shards_built"]) == (2, 1)  # the checksum caught shard 1
    cache = PcmCache(folder)
    for path in files[:5]:
        np.testing.assert_array_equal(cache.load(path), load_audio(path))
    # a source file rewritten: only its shard is decoded again
    os.utime(files[0], ns=(1, 1))
    assert build(files, folder, sample_rate=16000, shard_files=3)["shards_built"] == 1
    # fewer files: the extra shards go
    build(files[:2], folder, sample_rate=16000, shard_files=3)
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-00000.json", "shard-00000.pcm"]


def test_stale_caches_are_refused_or_ignored(files, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "cache"
    build(files[:5], folder, sample_rate=16000)
    assert open_cache(str(folder), tmp_path, files[:5]) is not None
    assert open_cache("", tmp_path, files[:5]) is None
    sf.write(files[2], np.zeros(100), 16000, subtype="PCM_16")  # the corpus changed
    with pytest.raises(StaleCacheError, match=r"1 file\(s\).*note2.wav.*python -m pretrain.cache"):
        open_cache(str(folder), tmp_path, files[:5])
    with pytest.raises(StaleCacheError, match="stereo.wav"):  # a file the cache never had
        open_cache(str(folder), tmp_path, [files[0], files[5]])
    # "auto" looks in the default folder: absent → none; stale → none, with a warning
    monkeypatch.setenv("OVERTONE_CACHE", str(tmp_path / "home"))
    assert open_cache("auto", tmp_path / "audio", files[:5]) is None
    from corpora.pcm_cache import default_dir

    build(files[:2], default_dir(tmp_path / "audio"), sample_rate=16000)
    assert open_cache("auto", tmp_path / "audio", files[:2]) is not None
    with caplog.at_level(logging.WARNING):
        assert open_cache("auto", tmp_path / "audio", files[:3]) is None
    assert "is stale" in caplog.text and "decoding the audio files instead" in caplog.text


def test_shard_index_records_what_was_read(files, tmp_path):
    build(files, tmp_path / "cache", sample_rate=16000, shard_files=10)
    meta = json.loads((tmp_path / "cache" / "shard-00000.json").read_text())
    assert len(meta["files"]) == 7 and len(meta["cached"]) == 6
    assert list(meta["unreadable"]) == [str(files[6])]
    assert meta["bytes"] == 2 * sum(meta["lengths"]) == (tmp_path / "cache" / "shard-00000.pcm").stat().st_size


def test_a_damaged_shard_is_never_read_as_audio(files, tmp_path, caplog):
    """Truncated: refused when named, ignored under "auto"; a flipped byte (same size): the shard
    fails its SHA-256 at first use and its files are decoded from their sources."""
    folder = tmp_path / "cache"
    build(files[:5], folder, sample_rate=16000, shard_files=3)
    shard = folder / "shard-00000.pcm"
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])
    with pytest.raises(StaleCacheError, match="shard-00000.pcm holds .* bytes.*damaged or truncated"):
        open_cache(str(folder), tmp_path, files[:5])
    shard.write_bytes(original)
    flipped = bytearray(original)
    flipped[100:140] = bytes(40)  # zeros, as a lost block reads back
    shard.write_bytes(bytes(flipped))
    cache = open_cache(str(folder), tmp_path, files[:5])
    with caplog.at_level(logging.WARNING):
        for path in files[:5]:
            np.testing.assert_array_equal(cache.load(path), load_audio(path))
    assert "does not match its SHA-256" in caplog.text
