"""The bad-input catalogue, the cases not covered beside their readers: each with the exact
expected behaviour — a clear error naming the file (or key), or a counted skip."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, tone

from corpora import nsynth
from corpora.irmas import IRMASFormatError, read_irmas
from corpora.openmic import OpenMICFormatError, read_openmic
from overtone.audio import AudioError, load_audio


def test_truncated_wav_gives_the_samples_present_and_truncated_flac_is_an_error(tmp_path):
    wave = tone(440.0, 1.0)
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", wave, 16000)
    for name in ("a.wav", "a.flac"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    partial = load_audio(tmp_path / "a.wav")  # libsndfile reads what is there; loaders pad to length
    assert 7000 < len(partial) < 8100
    np.testing.assert_allclose(partial, wave[: len(partial)], atol=1e-4)
    with pytest.raises(AudioError, match=r"cannot decode audio file .*a\.flac"):
        load_audio(tmp_path / "a.flac")


def test_surround_audio_is_averaged_to_mono(tmp_path):
    channels = np.stack([tone(110.0 * (k + 1), 0.5) for k in range(6)], axis=1)
    sf.write(tmp_path / "surround.wav", channels, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "surround.wav"), channels.mean(axis=1), atol=1e-6)


def test_a_clip_shorter_than_one_patch_is_padded_to_one(tmp_path):
    from encoders.bundle import save
    from encoders.pretrained import load_encoder

    loaded = load_encoder("random:compact")
    bundle_dir = save(tmp_path / "b", loaded.encoder, loaded.encoder_config, loaded.frontend, provenance={})
    import encoders

    bundle = encoders.load(bundle_dir)
    short = tone(440.0, 0.1)
    padded = np.pad(short, (0, loaded.frontend.samples_for_patches(1) - len(short)))
    np.testing.assert_array_equal(bundle.embed(short, 16000), bundle.embed(padded, 16000))
    assert bundle.embed(short, 16000).shape == (1, 128)


def test_partial_examples_json_names_the_file(tmp_path):
    folder = tmp_path / "nsynth-valid"
    (folder / "audio").mkdir(parents=True)
    (folder / "examples.json").write_text('{"flute_acoustic_000-060-100": {"note": 0, "pitch": 6')
    with pytest.raises(nsynth.NSynthFormatError, match=r"nsynth-valid/examples.json is not valid JSON"):
        nsynth.read_split(tmp_path, "valid")


def test_missing_dataset_roots_say_what_they_expected(tmp_path):
    with pytest.raises(OpenMICFormatError, match=r"openmic-2018.npz not found: an OpenMIC-2018 root holds"):
        read_openmic(tmp_path / "nowhere")
    with pytest.raises(IRMASFormatError, match=r"IRMAS-TrainingData not found"):
        read_irmas(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config.evaluation.thresold=0.3"], "thresold"),
        (["--config.train.num_epochs=many"], "num_epochs"),
        (["--encoder=/no/such/run"], "EncoderSourceError: --encoder=/no/such/run: no such folder"),
        (["--config.data.root=/no/such/openmic"], "OpenMICFormatError: /no/such/openmic/openmic-2018.npz not found"),
    ],
)
def test_finetune_cli_refuses_bad_flags_and_sources_in_one_line(args, message, subprocess_env, tmp_path):
    config = "openmic_attention_encoder" if "--encoder" in args[0] else "openmic_attention"
    command = [sys.executable, "-m", "finetune", f"--config={config}", f"--workdir={tmp_path}", *args]
    result = subprocess.run(command, env=subprocess_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_probe_refuses_an_unknown_task(subprocess_env, tmp_path):
    command = [sys.executable, "-m", "finetune.probe", "--task=nsynth_timbre", f"--workdir={tmp_path}"]
    result = subprocess.run(command, env=subprocess_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "unknown downstream dataset 'nsynth_timbre'" in result.stderr
    assert "did you mean 'nsynth_pitch'?" in result.stderr
    assert not (tmp_path / "config.json").exists()  # nothing written for a run that never started


def test_embed_scales_integer_pcm_and_refuses_non_finite_samples(tmp_path):
    """int16 samples are scaled by 1/32768 (uint8 centred on 128), never used as they are; NaN or
    Inf samples are refused instead of giving finite, meaningless embeddings."""
    import encoders
    from encoders.bundle import as_float_audio
    from encoders.bundle import save as save_bundle
    from encoders.pretrained import load_encoder
    from overtone.errors import BadValueError

    pcm = np.array([-32768, -16384, 0, 16384, 32767], np.int16)
    np.testing.assert_array_equal(as_float_audio(pcm), pcm / 32768.0)
    np.testing.assert_array_equal(as_float_audio(np.array([0, 128, 255], np.uint8)), [-1.0, 0.0, 127 / 128])
    loaded = load_encoder("random:compact")
    bundle = encoders.load(
        save_bundle(tmp_path / "b", loaded.encoder, loaded.encoder_config, loaded.frontend, provenance={})
    )
    wave = (0.3 * np.sin(np.arange(16000) / 5.0)).astype(np.float32)
    pcm = np.round(wave * 32767).astype(np.int16)
    np.testing.assert_array_equal(bundle.embed(pcm, 16000), bundle.embed(pcm.astype(np.float32) / 32768, 16000))
    for bad in (np.nan, np.inf):
        with pytest.raises(BadValueError, match="NaN or Inf samples"):
            bundle.embed(np.where(np.arange(16000) == 7, bad, wave), 16000)
    with pytest.raises(BadValueError, match="dtype"):
        bundle.embed(np.array(["a", "b"]), 16000)


def test_embed_cli_out_is_checked_before_any_work(tmp_path):
    from encoders.embed import embed_files
    from overtone.errors import BadValueError

    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(BadValueError, match="a folder is in the way"):
        embed_files("random:compact", [str(tmp_path)], tmp_path / "taken.npz")
    with pytest.raises(BadValueError, match="a folder is in the way"):
        embed_files("random:compact", [str(tmp_path)], tmp_path / "taken")  # np.savez would add .npz


def test_training_through_audioset_post_processing_is_refused():
    """8-bit rounding passes no gradient: mode `finetune` through an AudioSet import with its
    post-processing would train the head alone while saying it fine-tunes the encoder, and a
    pretraining config (a Python one: the command line has no such key) would never learn.
    Both are checked before a work directory is written; mode `frozen` embeds through it."""
    from types import SimpleNamespace

    from conftest import configured

    from finetune.train import _check_trainable
    from overtone.errors import BadValueError
    from pretrain.train import check_names

    config = configured("nsynth_mixup")
    with config.unlocked():
        config.encoder = dict(name="vggish", postprocess=True)
    with pytest.raises(BadValueError, match=r"encoder.postprocess=True: AudioSet's post-processing \(PCA"):
        check_names(config)

    imported = SimpleNamespace(encoder=SimpleNamespace(postprocess=True), source="bundles/vggish_audioset_pp")
    says = "bundles/vggish_audioset_pp: AudioSet's post-processing .* use mode 'frozen'"
    with pytest.raises(BadValueError, match=says):
        _check_trainable(configured("irmas_finetune"), imported)
    _check_trainable(configured("irmas_finetune", "--config.optimizer.encoder_lr_scale=0"), imported)  # head only
    plain = SimpleNamespace(encoder=SimpleNamespace(postprocess=False), source="bundles/vggish_audioset")
    _check_trainable(configured("irmas_finetune"), plain)
