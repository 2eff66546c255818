"""Fine-tuning end to end on the embedded stand-ins: `python -m finetune` itself once (its
output lines), the other configs in process (`finetune_and_evaluate`, what the command runs)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_NSYNTH, finetune

from runtime.workdir import read_metrics


def test_openmic_attention_trains_and_writes_its_report(subprocess_env, tmp_path):
    result = finetune(
        tmp_path,
        "openmic_attention",
        "--config.data.embedded.clips=80",
        "--config.train.num_epochs=15",
        env=subprocess_env,
    )
    assert "EMBEDDED" in result.stderr and "OpenMIC per-instrument F1" in result.stdout
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert len(losses) == 45 and np.mean(losses[-5:]) < np.mean(losses[:5])
    report = tmp_path / "report"
    for name in ("metrics.json", "report.md", "per_class_f1.png"):
        assert (report / name).is_file()
    assert (report / "per_class_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("f1_micro", "f1_macro", "openmic_f1", "lrap", "map"):
            assert 0.0 <= metrics[split][key] <= 1.0
    assert metrics["test"]["lrap"] > 0.5  # well above what random scores give on these labels
    assert "| test |" in (report / "report.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["report"]["test"]["f1_micro"] == metrics["test"]["f1_micro"]


TINY_IRMAS = ("--config.data.embedded.recordings=3", "--config.data.embedded.test_excerpts=12")
SMALL = ("--config.train.batch_size=16", "--config.train.log_every_steps=1")


def check_report(workdir, *, single_label: bool) -> dict:
    report = workdir / "report"
    metrics = json.loads((report / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("f1_micro", "f1_macro", "openmic_f1", "lrap", "map"):
            assert 0.0 <= metrics[split][key] <= 1.0, (split, key)
    assert (report / "per_class_f1.png").read_bytes()[:4] == b"\x89PNG"
    assert (report / "confusion_valid.png").is_file() == single_label
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    assert all(np.isfinite(losses))
    return metrics


def test_frozen_encoder_on_openmic_audio_reuses_its_embedding_cache(in_process, tmp_path):
    args = (
        "--config.encoder.source=random:compact",
        "--config.data.embedded.clips=80",
        "--config.train.num_epochs=4",
        f"--config.data.embedding_cache={tmp_path / 'cache'}",
        *SMALL,
    )
    in_process("finetune", tmp_path / "a", "openmic_attention_encoder", *args)
    in_process("finetune", tmp_path / "b", "openmic_attention_encoder", *args)
    first, second = (json.loads((tmp_path / r / "summary.json").read_text())["data"] for r in "ab")
    assert first["embedding_cache"]["reused"] is False and second["embedding_cache"]["reused"] is True
    assert first["embedding_cache"]["path"] == second["embedding_cache"]["path"]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    a, b = (check_report(tmp_path / r, single_label=False) for r in "ab")
    assert a["test"] == b["test"]  # same cache, same seed: the same numbers
    scaling = np.load(tmp_path / "a" / "scaling.npz")
    assert scaling["low"].shape == (128,) and (scaling["high"] >= scaling["low"]).all()


def test_irmas_attention_chooses_its_threshold_on_validation(in_process, tmp_path, caplog):
    in_process(
        "finetune",
        tmp_path,
        "irmas_attention",
        "--config.encoder.source=random:compact",
        "--config.train.num_epochs=15",
        *TINY_IRMAS,
        *SMALL,
    )
    assert "EMBEDDED" in caplog.text
    metrics = check_report(tmp_path, single_label=True)
    assert metrics["threshold"]["chosen_on"] == "valid"
    assert 0.0 <= metrics["valid"]["single_label"]["accuracy"] <= 1.0
    assert "optimistic" in metrics["extra"]["test_optimistic"]["note"]
    assert "test_optimistic" in (tmp_path / "report" / "report.md").read_text()
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_irmas_finetune_starts_from_a_pretraining_run(in_process, tmp_path):
    from encoders.pretrained import load_encoder

    run = tmp_path / "pretrain"
    in_process(
        "pretrain",
        run,
        "nsynth_mixup:encoder=compact",
        *TINY_NSYNTH,
        "--config.train.batch_size=16",
        "--config.train.num_steps=3",
        "--config.train.eval_every_steps=3",
    )
    workdir = tmp_path / "finetune"
    in_process(
        "finetune",
        workdir,
        "irmas_finetune",
        f"--config.encoder.source={run}",
        "--config.train.num_epochs=3",
        *TINY_IRMAS,
        *SMALL,
    )
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["data"]["encoder"] == str(run)
    assert summary["data"]["encoder_checksum"] == load_encoder(str(run)).checksum
    check_report(workdir, single_label=True)


def test_irmas_multistft_trains_a_three_channel_cnn_with_spec_augment(in_process, tmp_path):
    in_process(
        "finetune",
        tmp_path,
        "irmas_multistft",
        "--config.train.num_epochs=3",
        "--config.mix.prob=0.5",
        *TINY_IRMAS,
        *SMALL,
    )
    metrics = check_report(tmp_path, single_label=True)
    assert 0.0 <= metrics["test"]["top1_in_labels"] <= 1.0
    assert "top1_in_labels" in (tmp_path / "report" / "report.md").read_text()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["frontend"]["name"] == "multistft" and config["encoder"]["in_channels"] == 3


def test_openmic_cqt_with_augmentation_trains_end_to_end(in_process, tmp_path):
    in_process(
        "finetune",
        tmp_path,
        "openmic_attention_cqt_aug",
        "--config.data.embedded.clips=80",
        "--config.train.num_steps=3",
        "--config.train.batch_size=8",
    )
    check_report(tmp_path, single_label=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["frontend"]["name"] == "cqt" and config["mode"] == "finetune"
    assert config["data"]["augment"]["time_stretch"] == 0.3 and config["mix"]["prob"] == 0.5


@pytest.mark.slow  # ≈ 1 min: python -m pytest -m slow tests/test_finetune_e2e.py
def test_zhong_pipeline_with_their_waveform_encoder(subprocess_env, tmp_path):
    """NSynth pretraining of the sinc encoder on waveforms, then IRMAS fine-tuning from it."""
    run = tmp_path / "pretrain"
    command = [
        sys.executable,
        "-m",
        "pretrain",
        "--config=nsynth_mixup:encoder=sinc",
        f"--workdir={run}",
        "--config.data.embedded.pitch_step=12",
        "--config.data.embedded.velocities=(100,)",
        "--config.train.batch_size=8",
        "--config.train.num_steps=2",
        "--config.train.eval_every_steps=2",
    ]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "export" / "manifest.json").read_text())["frontend"]["name"] == "waveform"
    finetune(
        tmp_path / "ft",
        "irmas_finetune",
        f"--encoder={run}",
        "--config.train.num_epochs=1",
        "--config.train.batch_size=8",
        *TINY_IRMAS,
        env=subprocess_env,
    )
    check_report(tmp_path / "ft", single_label=True)


def test_a_finished_run_is_not_credited_to_another_encoder(subprocess_env, tmp_path):
    """The encoder's weights are part of a downstream run's identity: after the run at --encoder's
    path was replaced by other weights, the same command is refused and nothing changes."""
    from conftest import write_run
    from test_workdir import tree_digest

    write_run(tmp_path / "encoder", seed=7)
    args = (
        f"--encoder={tmp_path / 'encoder'}",
        "--config.data.embedded.clips=80",
        "--config.train.num_steps=2",
        f"--config.data.embedding_cache={tmp_path / 'cache'}",
    )
    finetune(tmp_path / "run", "openmic_attention_encoder", *args, env=subprocess_env)  # the command line: kept
    before = tree_digest(tmp_path / "run")
    (tmp_path / "encoder").rename(tmp_path / "encoder.old")
    write_run(tmp_path / "encoder", seed=8)
    command = [
        sys.executable,
        "-m",
        "finetune",
        "--config=openmic_attention_encoder",
        f"--workdir={tmp_path / 'run'}",
        "--config.train.batch_size=16",
        "--config.train.log_every_steps=1",
        *args,
    ]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "encoder_weights" in result.stderr and "--fresh" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(tmp_path / "run") == before
