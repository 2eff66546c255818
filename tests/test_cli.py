"""The command-line edge: absolute paths, --help, one-line did-you-mean errors before any data is
read, progress lines when the output is not a terminal."""

from __future__ import annotations

import itertools
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ml_collections import ConfigDict

import configs
from overtone.errors import BadValueError, UnknownNameError, did_you_mean
from overtone.progress import Progress, eta
from runtime import cli


def test_path_values_become_absolute_and_keywords_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ConfigDict(
        {
            "data": {
                "root": "data/nsynth",
                "pcm_cache": "auto",
                "manifest": "",
                "nsynth": {"root": "~/n", "pcm_cache": "off"},
                "embedded": {"cache_dir": "cache"},
                "dataset": "nsynth",
            },
            "encoder": {"name": "vggish", "source": "runs/mixup"},
            "objective": {"vectors_path": "glove.txt"},
        }
    )
    cli.absolute_paths(config)
    assert config.data.root == str(tmp_path / "data" / "nsynth")
    assert config.data.nsynth.root == str(Path.home() / "n")
    assert config.data.embedded.cache_dir == str(tmp_path / "cache")
    assert config.encoder.source == str(tmp_path / "runs" / "mixup")
    assert config.objective.vectors_path == str(tmp_path / "glove.txt")
    assert (config.data.pcm_cache, config.data.manifest, config.data.dataset) == ("auto", "", "nsynth")
    assert config.data.nsynth.pcm_cache == "off"
    config.encoder.source = "random:compact"
    cli.absolute_paths(config)
    assert config.encoder.source == "random:compact"


def test_names_get_a_did_you_mean():
    assert did_you_mean("compcat", ["compact", "vggish"]) == " (did you mean 'compact'?)"
    assert did_you_mean("zzz", ["compact", "vggish"]) == ""
    with pytest.raises(UnknownNameError, match=r"did you mean 'nsynth_mixup'.*available: \["):
        configs.resolve("nsynth_mixpu")
    config = ConfigDict({"train": {"batch_size": 64, "num_steps": 0}})
    with pytest.raises(UnknownNameError, match=r"config.train has no key 'bach_size' \(did you mean 'batch_size'\?\)"):
        cli.check_override_keys(config, ["prog", "--config.train.bach_size=3"])
    with pytest.raises(UnknownNameError, match=r"config has no key 'trian' \(did you mean 'train'\?\)"):
        cli.check_override_keys(config, ["prog", "--config.trian.batch_size=3"])
    cli.check_override_keys(config, ["prog", "--config.train.batch_size=3", "--workdir=x"])


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("pretrain", ["--config=NAME", "--workdir=DIR", "nsynth_mixup ", "freesound_align ", "examples:"]),
        ("finetune", ["--encoder=VALUE", "irmas_finetune ", "openmic_attention_cqt_aug ", "folder_4class_cnn "]),
        ("finetune.probe", ["--task=VALUE", "--seeds=VALUE", "nsynth_family"]),
        ("pretrain.export", ["--run", "--checkpoint", "--out", "example:"]),
        ("encoders.embed", ["--encoder", "--hop", "--out"]),
        ("pretrain.cache", ["--config", "--out", "--workers"]),
        ("finetune.compare", ["--out", "--split"]),
        ("runtime.launch", ["--processes=N MODULE", "SIGTERM"]),
    ],
)
def test_help_lists_the_flags_and_exits_0(module, expected, subprocess_env):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=subprocess_env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for text in expected:
        assert text in result.stdout, f"{module} --help lacks {text!r}:\n{result.stdout}"
    if module == "finetune":  # every downstream config, and no pretraining one
        listed = result.stdout.split("configs:")[1].split("examples:")[0]
        assert "nsynth_mixup" not in listed and listed.count("\n  ") >= 7


def test_config_help_shows_its_variants(subprocess_env):
    result = subprocess.run(
        [sys.executable, "-m", "pretrain", "--config=nsynth_mixup", "--help"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert result.returncode == 0 and "recipe=taenzer|zhong" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config=nsynth_mixpu"], "did you mean 'nsynth_mixup'?"),
        (["--config=nsynth_mixup:encodr=compact"], "variant 'encodr=compact' not understood (did you mean 'encoder'?)"),
        (["--config=nsynth_mixup:encoder=compcat"], "unknown encoder 'compcat' (did you mean 'compact'?)"),
        (["--config=nsynth_mixup", "--config.objective.name=famly_mixup"], "did you mean 'family_mixup'?"),
        (["--config=nsynth_mixup", "--config.trian.batch_size=3"], "did you mean 'train'?"),
        (["--config=nsynth_mixup:encoder=compact", "--config.data.root=no/such/nsynth"], "no/such/nsynth"),
        (["--config=nsynth_mixup", "--config.train.batch_size=0"], "--config.train.batch_size=0: must be > 0"),
        (["--config=nsynth_mixup", "--config.train.log_every_steps=0"], "log_every_steps=0: must be > 0"),
        (["--config=nsynth_mixup", "--config.data.max_bad_fraction=-1"], "max_bad_fraction=-1.0: must lie in [0, 1]"),
        (["--config=nsynth_mixup", "--config.data.max_seconds=0"], "max_seconds=0.0: must be > 0"),
        (["--config=irmas_attention"], "--config=irmas_attention is a finetune config: run it with python -m finetune"),
    ],
)
def test_typos_are_one_line_before_any_data_and_leave_nothing_behind(args, message, tmp_path, subprocess_env):
    env = dict(subprocess_env, OVERTONE_CACHE=str(tmp_path / "empty-cache"))  # a scan would render here
    result = subprocess.run(
        [sys.executable, "-m", "pretrain", *args, "--workdir=runs/typo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if message in line]
    assert len(lines) == 1
    assert not (tmp_path / "runs").exists()  # no work directory for a run that never started
    assert not (tmp_path / "empty-cache").exists()  # no corpus rendered or scanned for it


def test_progress_without_a_terminal_logs_lines_with_rate_and_eta(caplog, monkeypatch):
    monkeypatch.setattr("overtone.progress.interactive", lambda: False)
    clock = itertools.count(0, 10)  # 10 s per call
    monkeypatch.setattr("overtone.progress.time.perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="overtone.progress"):
        progress = Progress(100, "decode", unit="file", every=50)
        for _ in range(100):
            progress.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("decode: file ") and "ETA" in lines[0]
    assert lines[-1].startswith("decode: file 100/100") and "ETA 0:00:00" in lines[-1]
    assert eta(120, 2.0) == "0:01:00" and eta(5, 0.0) == "?"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"train": {"batch_size": 0}}, "batch_size=0: must be > 0"),
        ({"data": {"max_bad_fraction": 1.5}}, "must lie in [0, 1]"),
        ({"data": {"augment": {"gain": -0.1}}}, "augment.gain=-0.1: must lie in [0, 1]"),
        ({"optimizer": {"learning_rate": float("inf")}}, "must be a finite number"),
        ({"data": {"workers": -1}}, "workers=-1: must be ≥ 0"),
        ({"seed": -1}, "seed=-1: must be ≥ 0"),
        ({"evaluator": {"seed": 2**32}}, "evaluator.seed=4294967296: must be < 2**32"),
        ({"train": {"num_steps": 0, "num_epochs": 0}}, "nothing to train"),
    ],
)
def test_config_values_are_range_checked(values, message):
    with pytest.raises(BadValueError, match=re.escape(message)):
        cli.check_values(ConfigDict(values))


def test_every_shipped_config_passes_the_value_checks():
    for name in configs.names():
        cli.check_values(configs.load(configs.resolve(name)))


@pytest.mark.parametrize("encoder", ["random:nope", "does/not/exist"])
def test_probe_with_a_bad_encoder_leaves_no_work_directory(encoder, tmp_path, subprocess_env):
    result = subprocess.run(
        [sys.executable, "-m", "finetune.probe", f"--encoder={encoder}", "--workdir=runs/p"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert result.returncode == 1 and "EncoderSourceError" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
