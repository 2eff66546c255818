"""Loading encoders for downstream use, sequence embedding, and the embedding cache."""

import json
import os

import jax
import numpy as np
import pytest
import soundfile as sf
from conftest import write_run
from flax import nnx

import encoders
from encoders.embedding import embed_sequences, with_patch_hop
from encoders.pretrained import EncoderSourceError, checksum, load_encoder
from finetune import embedding_cache
from overtone.audio import BadFileLog


def test_encoder_is_read_from_a_run_exactly(tmp_path):
    saved = write_run(tmp_path)
    loaded = load_encoder(str(tmp_path))
    for a, b in zip(jax.tree.leaves(nnx.state(saved.encoder)), jax.tree.leaves(nnx.state(loaded.encoder)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.checksum == checksum(saved.encoder) != load_encoder("random:compact").checksum
    assert loaded.encoder_config == {"name": "compact"} and loaded.frontend.patch_hop == 96


def test_checksum_changes_with_any_weight():
    encoder = encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(0))
    before = checksum(encoder)
    assert checksum(encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(0))) == before
    encoder.project.bias[...] = encoder.project.bias[...].at[3].add(1e-6)
    assert checksum(encoder) != before


def test_bad_sources_say_what_was_expected(tmp_path):
    with pytest.raises(EncoderSourceError, match="unknown encoder 'resnet'"):
        load_encoder("random:resnet")
    with pytest.raises(EncoderSourceError, match="config.json not found; expected a pretraining work directory"):
        load_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"encoder": {"name": "compact"}}))
    with pytest.raises(EncoderSourceError, match="no finished checkpoint"):
        load_encoder(str(tmp_path))


def test_sequences_equal_whole_clip_encoding_at_any_chunking():
    loaded = load_encoder("random:compact")
    loaded.encoder.eval()
    frontend = with_patch_hop(loaded.frontend, 0.5)
    assert frontend.patch_hop == 50
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.normal(size=n).astype(np.float32) for n in (16000, 41000, 3000, 80000)]
    small = list(embed_sequences(loaded.encoder, frontend, waves, chunk=4))
    large = list(embed_sequences(loaded.encoder, frontend, waves, chunk=64))
    assert [s.shape for s in small] == [(1, 128), (4, 128), (1, 128), (9, 128)]
    for i, wave in enumerate(waves):
        padded = np.pad(wave, (0, max(0, frontend.samples_for_patches(1) - len(wave))))
        direct = np.asarray(encoders.encode_clips(loaded.encoder, frontend, padded[None]))[0]
        np.testing.assert_allclose(small[i], direct, atol=1e-5)
        np.testing.assert_allclose(large[i], direct, atol=1e-5)


def test_embedding_cache_is_reused_and_keyed_on_weights_and_files(tmp_path):
    rng = np.random.default_rng(1)
    paths = {"train": [tmp_path / f"{i}.wav" for i in range(3)], "test": [tmp_path / "t.wav", tmp_path / "bad.wav"]}
    for path in paths["train"] + paths["test"][:1]:
        sf.write(path, 0.1 * rng.normal(size=20000), 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    loaded = load_encoder("random:compact")
    loaded.encoder.eval()
    cache = tmp_path / "cache"
    log = BadFileLog(1.0)
    first, info = embedding_cache.cached_sequences(loaded.encoder, loaded.frontend, loaded.checksum, paths, cache, log)
    assert not info["reused"] and first["test"][1] is None and len(log.bad) == 1
    assert [s.shape for s in first["train"]] == [(1, 128)] * 3
    second, info2 = embedding_cache.cached_sequences(None, loaded.frontend, loaded.checksum, paths, cache, log)
    assert info2 == {"path": info["path"], "reused": True}  # encoder None: it was not needed
    for a, b in zip(first["train"] + first["test"][:1], second["train"] + second["test"][:1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert second["test"][1] is None
    key = embedding_cache.cache_key(loaded.checksum, loaded.frontend, paths)
    assert embedding_cache.cache_key("other", loaded.frontend, paths) != key
    assert embedding_cache.cache_key(loaded.checksum, with_patch_hop(loaded.frontend, 0.5), paths) != key
    os.utime(paths["train"][0], ns=(1, 1))
    assert embedding_cache.cache_key(loaded.checksum, loaded.frontend, paths) != key
    assert not list(cache.glob(".*partial*"))


def test_a_run_with_a_bundle_is_read_through_its_bundle(tmp_path):
    """--encoder=RUN means the run's exported bundle (from its best checkpoint): no checkpoint is
    read, so a run whose checkpoints were cleaned away still serves its encoder."""
    import shutil

    from encoders.export import export_run

    write_run(tmp_path / "run")
    bundle = export_run(tmp_path / "run")
    for folder in ("best", "checkpoints"):
        shutil.rmtree(tmp_path / "run" / folder)
    loaded = load_encoder(str(tmp_path / "run"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert loaded.checksum == manifest["weights"]["parameter_checksum"]
