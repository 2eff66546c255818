"""Loading encoders for downstream use, sequence embedding, and the embedding cache."""

import json
import os
from pathlib import Path

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
from pretrain.export import ExportError, export_run
from runtime.checkpoint import CheckpointReadError


def test_encoder_is_read_from_a_run_exactly(tmp_path):
    """What the run's checkpoint holds is what its bundle (pretrain.export) serves, bit for bit."""
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
    with pytest.raises(EncoderSourceError, match="no manifest.json in .*; expected an encoder bundle"):
        load_encoder(str(tmp_path))
    with pytest.raises(EncoderSourceError, match="no such folder"):
        load_encoder(str(tmp_path / "missing"))
    (tmp_path / "weights.txt").write_text("")
    with pytest.raises(EncoderSourceError, match="a file, not a folder"):
        load_encoder(str(tmp_path / "weights.txt"))
    write_run(tmp_path / "killed", export=False)  # a run stopped before its end: checkpoints, no bundle
    with pytest.raises(EncoderSourceError, match="has no bundle .*`python -m pretrain.export --run=.*killed`"):
        load_encoder(str(tmp_path / "killed"))
    with pytest.raises(CheckpointReadError, match="no finished checkpoint 'latest'"):
        export_run(tmp_path / "killed", checkpoint="latest")  # write_run saved a best checkpoint only
    with pytest.raises(ExportError, match="not found; expected a pretraining work directory"):
        export_run(tmp_path)


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


def test_a_damaged_or_edited_embedding_cache_entry_is_computed_again(tmp_path):
    """The entry's digest covers every array: a truncated file, one changed value (old digest
    kept) or a missing clip is never served as embeddings."""
    rng = np.random.default_rng(2)
    paths = {"train": [tmp_path / f"{i}.wav" for i in range(3)]}
    for path in paths["train"]:
        sf.write(path, 0.1 * rng.normal(size=20000), 16000)
    loaded = load_encoder("random:compact")
    loaded.encoder.eval()
    args = (loaded.frontend, loaded.checksum, paths, tmp_path / "cache", BadFileLog(1.0))
    first, info = embedding_cache.cached_sequences(loaded.encoder, *args)
    entry = Path(info["path"])
    pristine = entry.read_bytes()
    with np.load(entry) as stored:
        arrays = dict(stored)

    def edited(**changes):
        np.savez(entry, **(arrays | changes))

    damages = {
        "truncated": lambda: entry.write_bytes(pristine[: len(pristine) // 2]),
        "one value changed": lambda: edited(**{"train.embeddings": arrays["train.embeddings"] + np.float32(1e-3)}),
        "a clip dropped": lambda: edited(**{"train.lengths": arrays["train.lengths"][:2]}),
        "no digest": lambda: np.savez(entry, **{k: v for k, v in arrays.items() if k != "digest"}),
    }
    for damage in damages.values():
        damage()
        again, info = embedding_cache.cached_sequences(loaded.encoder, *args)
        assert not info["reused"]
        for a, b in zip(first["train"], again["train"], strict=True):
            np.testing.assert_array_equal(a, b)
    assert entry.read_bytes() == pristine  # computed again and rewritten as it was


def test_a_run_with_a_bundle_is_read_through_its_bundle(tmp_path):
    """--encoder=RUN means the run's exported bundle: no checkpoint is read, so a run whose
    checkpoints were cleaned away still serves its encoder."""
    import shutil

    write_run(tmp_path / "run")
    bundle = tmp_path / "run" / "export"
    for folder in ("best", "checkpoints"):
        shutil.rmtree(tmp_path / "run" / folder)
    loaded = load_encoder(str(tmp_path / "run"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert loaded.checksum == manifest["weights"]["parameter_checksum"]
    assert manifest["source"]["checkpoint"] == "best" and manifest["source"]["step"] == 5


def test_a_random_encoder_that_takes_one_front_end_gets_it():
    """random:sinc under a config whose front-end is the default log-mel: the waveform front-end
    its network takes, and embeddings of clips."""
    import numpy as np

    from encoders.frontend import Waveform
    from encoders.pretrained import load_encoder

    loaded = load_encoder("random:sinc", frontend={"name": "vggish_logmel"})
    assert isinstance(loaded.frontend, Waveform)
    patches = loaded.frontend.patches(loaded.frontend(np.zeros((1, 16000), np.float32)))
    assert loaded.encoder(patches.reshape(-1, *patches.shape[2:])).shape[-1] == 512
