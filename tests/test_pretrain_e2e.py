"""`python -m pretrain` end to end on the embedded corpus: learns, resumes after SIGKILL
exactly, gives the same losses on 1 and 4 devices, and stops cleanly on a NaN."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TINY, TINY_NSYNTH, pretrain, train_losses

from runtime.workdir import read_metrics


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, embedded_cache):
    """One uninterrupted 24-step run, the reference for the other tests."""
    env = dict(os.environ, OVERTONE_CACHE=str(embedded_cache))
    env.pop("NSYNTH_DIR", None)
    workdir = tmp_path_factory.mktemp("baseline")
    result = pretrain(workdir, "--config.train.num_steps=24", "--config.train.eval_every_steps=8", env=env)
    return workdir, result


def test_run_writes_its_outputs_and_learns(baseline):
    workdir, result = baseline
    assert "EMBEDDED corpus" in result.stderr  # said loudly, in the first lines
    assert result.stderr.index("EMBEDDED corpus") < result.stderr.index("encoder compact")
    # output to a pipe: a plain progress line per logged step and per evaluation
    progress = [line for line in result.stderr.splitlines() if "train: step " in line]
    assert any("train: step 24/24, loss " in line and "examples/s" in line and "ETA" in line for line in progress)
    assert sum("validation loss" in line for line in progress) == 3
    for name in ("config.json", "command.txt", "metrics.jsonl", "summary.json"):
        assert (workdir / name).is_file()
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [16, 24]
    assert [p.name for p in (workdir / "best").iterdir() if p.name.isdigit()]
    losses = train_losses(workdir)
    assert sorted(losses) == list(range(1, 25)) and all(np.isfinite(list(losses.values())))
    first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean([losses[s] for s in (22, 23, 24)])
    assert last < first - 0.2
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["final_step"] == 24 and not summary["stopped_early"]
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert summary["data"]["embedded"] and summary["data"]["splits"]["train"]["used"] > 100
    assert json.loads((workdir / "config.json").read_text())["encoder"]["name"] == "compact"
    import jax  # what computed the numbers: one process with one device of this host, these versions

    machine = summary["machine"]
    assert machine["devices"] == f"1 × {jax.devices()[0].device_kind}" and machine["processes"] == 1
    assert machine["versions"]["jax"] == jax.__version__ and machine["versions"]["numpy"] == np.__version__
    assert machine["host_cpu"]
    # the encoder bundle is written at the end from the best model in memory: the same weights
    # as the best checkpoint (re-exported from disk for comparison), named by the same state checksum
    manifest = json.loads((workdir / "export" / "manifest.json").read_text())
    assert summary["export"] == str(workdir / "export")
    assert manifest["source"]["checkpoint"] == "best" and manifest["source"]["objective"] == "family_mixup"
    assert manifest["source"]["step"] == summary["best_step"] == summary["evaluated"]["step"]
    assert manifest["source"]["state_sha256"] == summary["evaluated"]["state_sha256"]
    from pretrain.export import export_run

    again = json.loads((export_run(workdir, workdir.parent / "reexported") / "manifest.json").read_text())
    assert again["weights"]["parameter_checksum"] == manifest["weights"]["parameter_checksum"]
    assert again["source"]["step"] == manifest["source"]["step"]


BASELINE = ("nsynth_mixup:encoder=compact", *TINY, *TINY_NSYNTH)  # what `pretrain` (conftest) adds


def test_rerunning_a_finished_run_does_nothing(baseline, in_process, caplog):
    caplog.set_level(logging.INFO)
    workdir, _ = baseline
    before = (workdir / "metrics.jsonl").read_text()
    in_process("pretrain", workdir, *BASELINE, "--config.train.num_steps=24", "--config.train.eval_every_steps=8")
    assert "already finished" in caplog.text
    assert (workdir / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize("state", ["finished", "killed"])
def test_a_changed_config_is_refused_on_a_run_before_any_data_is_read(baseline, tmp_path, monkeypatch, state):
    """The fingerprint rule through the pretraining entry point, on a real run directory (finished,
    or as a kill leaves it): each result-determining change is refused in one line before the
    corpus is opened, and no byte of the directory changes."""
    from ml_collections import ConfigDict
    from test_workdir import tree_digest

    import pretrain.train
    from runtime.workdir import WorkdirError

    workdir = tmp_path / "run"
    shutil.copytree(baseline[0], workdir)
    if state == "killed":
        for name in ("summary.json", "export", "checkpoints/24"):
            shutil.rmtree(workdir / name) if (workdir / name).is_dir() else (workdir / name).unlink()
    before = tree_digest(workdir)
    monkeypatch.setattr(pretrain.train, "get_dataset", None)  # any data access would fail loudly
    monkeypatch.setattr(pretrain.train, "check_names", lambda config: None)
    for key, value in (
        ("train.batch_size", 8),
        ("optimizer.learning_rate", 0.5),
        ("frontend.name", "logmel"),
        ("objective.mixup_alpha", 0.7),
        ("seed", 3),
    ):
        config = ConfigDict(json.loads((workdir / "config.json").read_text()))
        section, leaf = (config, key) if "." not in key else (config[key.split(".")[0]], key.split(".")[1])
        assert leaf in section and section[leaf] != value
        section[leaf] = value
        with pytest.raises(WorkdirError, match=f"holds a run with another config \\({key}: .*nothing was changed"):
            pretrain.train.train_and_evaluate(config, workdir)
    assert tree_digest(workdir) == before


def test_killed_before_its_summary_a_finished_run_only_writes_it(baseline, in_process, tmp_path):
    workdir, _ = baseline
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    (copy / "summary.json").unlink()
    train_rows = [r for r in read_metrics(copy) if r["split"] == "train"]
    in_process("pretrain", copy, *BASELINE, "--config.train.num_steps=24", "--config.train.eval_every_steps=8")
    assert [r for r in read_metrics(copy) if r["split"] == "train"] == train_rows  # no step retrained
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (copy, workdir))
    assert ours["test"] == theirs["test"]


def test_sigkill_then_resume_matches_uninterrupted(baseline, subprocess_env, tmp_path):
    workdir, _ = baseline
    args = ("--config.train.num_steps=24", "--config.train.eval_every_steps=8")
    process = pretrain(tmp_path, *args, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (tmp_path / "checkpoints" / "8").is_dir():
        assert process.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    killed_at = max(train_losses(tmp_path))
    assert 8 <= killed_at < 24
    result = pretrain(tmp_path, *args, env=subprocess_env)
    assert "resuming from step" in result.stderr
    assert train_losses(tmp_path) == train_losses(workdir)  # bit-identical on CPU
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (tmp_path, workdir))
    assert ours["test"] == theirs["test"] and ours["best_validation"] == theirs["best_validation"]


# A forward pass in float32 from the same parameters and batch, on 1 or 4 devices, differs only in
# summation order: XLA blocks a per-device batch of 4 differently from one of 16, and batch-norm
# sums its statistics across devices. A dot product of K terms summed in another order moves by
# about sqrt(K)·u relative (u = 2^-24 ≈ 6e-8; random-walk rounding), K ≤ 3·3·256 = 2304 in the
# compact CNN: ≈ 3e-6 per layer. Ten layers (5 conv + 5 batch-norm) and the loss give ≲ 3e-5.
SAME_STATE_RTOL = 1e-4


def test_four_devices_compute_what_one_device_computes(baseline, subprocess_env, tmp_path):
    """What data parallelism guarantees: from the same state and batch, a training step and an
    evaluation compute the same numbers up to float32 summation order. It does not guarantee that
    many Adam steps land in the same place: a gradient component near zero can change sign under
    an O(u) difference and Adam then moves it by a learning-rate-sized step, so two correct runs
    part after a few steps. So: the step after a resume from the 1-device checkpoint (step 17
    from step 16), and the test evaluation of the same final checkpoint, each on 4 devices."""
    workdir, _ = baseline
    one = train_losses(workdir)
    args = ("--config.train.num_steps=24", "--config.train.eval_every_steps=8")

    resumed = tmp_path / "resumed"
    shutil.copytree(workdir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "24")
    (resumed / "summary.json").unlink()
    result = pretrain(resumed, *args, env=subprocess_env, devices=4)
    assert "4 devices" in result.stderr and "resuming from step 16" in result.stderr
    four = train_losses(resumed)
    np.testing.assert_allclose(four[17], one[17], rtol=SAME_STATE_RTOL)
    assert all(np.isfinite(four[s]) for s in range(17, 25))

    finished = tmp_path / "finished"
    shutil.copytree(workdir, finished)
    (finished / "summary.json").unlink()
    pretrain(finished, *args, env=subprocess_env, devices=4)
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (finished, workdir))
    assert ours["test"]["examples"] == theirs["test"]["examples"]
    np.testing.assert_allclose(ours["test"]["loss"], theirs["test"]["loss"], rtol=SAME_STATE_RTOL)


def test_the_other_convolution_and_transfer_guard_give_the_same_losses(baseline, subprocess_env, tmp_path):
    """The convolution formulation `auto` does not pick here, with any implicit host<->device
    transfer in the loop made an error: same losses as the baseline (`auto`, no guard)."""
    from encoders.compute import resolve_conv

    other = "xla" if resolve_conv("auto") == "im2col" else "im2col"
    workdir, _ = baseline
    cache = tmp_path / "xla-cache"
    env = dict(subprocess_env, OVERTONE_COMPILATION_CACHE=str(cache))
    args = (
        "--config.train.num_steps=2",
        "--config.train.eval_every_steps=2",
        f"--config.compute.conv={other}",
        "--config.train.transfer_guard=disallow",
    )
    pretrain(tmp_path / "run", *args, env=env)
    # Step 1 starts from the same parameters and batch: the forward pass is XLA's either way and
    # the kernel gradient differs only in summation order (SAME_STATE_RTOL above). Later steps
    # are not comparable (see the 4-device test: Adam amplifies rounding into diverging runs).
    ours, theirs = (
        next(r for r in read_metrics(d) if r["split"] == "train" and r["step"] == 1)
        for d in (tmp_path / "run", workdir)
    )
    for name in ("loss", "grad_norm"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=SAME_STATE_RTOL)
    assert all(np.isfinite(v) for v in train_losses(tmp_path / "run").values())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["compile_seconds"] > 0
    assert any(cache.iterdir())  # the persistent compilation cache was written


def test_pcm_cache_cli_then_training_from_it_gives_the_same_losses(
    baseline, subprocess_env, in_process, tmp_path, caplog
):
    """`python -m pretrain.cache` decodes the corpus once; training from the cache (the embedded
    corpus is 16-bit WAV, cached losslessly) reproduces the decoded run's losses exactly."""
    workdir, _ = baseline
    cache = tmp_path / "pcm"
    command = [
        sys.executable,
        "-m",
        "pretrain.cache",
        "--config=nsynth_mixup:encoder=compact",
        *TINY_NSYNTH,
        f"--out={cache}",
    ]
    built = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "1 shard(s) built" in built.stdout and (cache / "manifest.json").is_file()
    caplog.set_level(logging.INFO)
    args = ("--config.train.num_steps=8", "--config.train.eval_every_steps=8", f"--config.data.pcm_cache={cache}")
    in_process("pretrain", tmp_path / "run", *BASELINE, *args)
    assert "reading audio from the pcm cache" in caplog.text
    one, other = train_losses(workdir), train_losses(tmp_path / "run")
    assert [other[s] for s in range(1, 9)] == [one[s] for s in range(1, 9)]
    # a file changed since the cache was built (its recorded mtime differs): refused in one line
    shard = cache / "shard-00000.json"
    meta = json.loads(shard.read_text())
    meta["files"][0][2] -= 1
    shard.write_text(json.dumps(meta))
    from corpora.pcm_cache import StaleCacheError
    from runtime.errors import USER_ERRORS

    with pytest.raises(StaleCacheError, match="rebuild") as refused:
        in_process("pretrain", tmp_path / "stale", *BASELINE, *args)
    assert isinstance(refused.value, USER_ERRORS)  # the command says it in one line (runtime.cli.run)


def test_nan_stops_with_the_step_and_keeps_good_checkpoints(subprocess_env, tmp_path):
    result = pretrain(
        tmp_path,
        "--config.train.num_steps=6",
        "--config.train.checkpoint_every_steps=1",
        "--config.train.eval_every_steps=100",
        "--config.optimizer.learning_rate=1e15",
        env=subprocess_env,
        check=False,
    )
    assert result.returncode != 0
    assert "non-finite training state at step" in result.stderr
    assert "Traceback" not in result.stderr  # one clear line, not a stack
    failed_step = int(result.stderr.split("non-finite training state at step ")[1].split()[0])
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) < failed_step  # the good checkpoints before it are kept
    meta = json.loads((tmp_path / "checkpoints" / str(saved[-1]) / "meta" / "metadata").read_text())
    assert meta["step"] == saved[-1]


@pytest.mark.parametrize(
    "config", ["nsynth_denoise_add", "nsynth_denoise_mul", "nsynth_mixup_denoise", "nsynth_textual", "freesound_align"]
)
def test_other_objectives_train_and_resume_in_the_shared_loop(config, in_process, tmp_path, caplog):
    """Each objective, run in process as its command would run it: learns, checkpoints, and
    resumed from step 6 reproduces its run."""
    caplog.set_level(logging.INFO)
    extra = {  # the word-vector run also exercises SpecAugment; COALA's 1152-d space and 2.9-s crops,
        # which cost a second a step here (the README runs them), shrink to what the mechanics need
        "nsynth_textual": ["--config.spec_augment.time_masks=2", "--config.spec_augment.freq_masks=1"],
        "freesound_align": ["--config.objective.projection_dim=64", "--config.data.segment_patches=1"],
    }.get(config, [])
    sizes = TINY + ([] if config.startswith("freesound") else TINY_NSYNTH)
    args = (
        f"{config}:encoder=compact",
        *sizes,
        "--config.train.num_steps=12",
        "--config.train.eval_every_steps=6",
        *extra,
    )
    in_process("pretrain", tmp_path, *args)
    rows = read_metrics(tmp_path)
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(losses) == 12 and np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [6, 12]
    objective = json.loads((tmp_path / "config.json").read_text())["objective"]["name"]
    assert objective in ("denoise", "multi", "textual", "tag_align")
    # as if killed just before the last checkpoint: resuming from step 6 reproduces the run
    shutil.rmtree(tmp_path / "checkpoints" / "12")
    first = train_losses(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").unlink()
    in_process("pretrain", tmp_path, *args)
    assert "resuming from step 6" in caplog.text
    assert train_losses(tmp_path) == first
    assert json.loads((tmp_path / "summary.json").read_text())["test"] == summary["test"]
    first_step = next(r for r in rows if r["split"] == "train")  # rows[0] may be the evaluator's step 0
    if config == "freesound_align":
        assert (tmp_path / "tag_vocabulary.json").is_file() and "audio_to_tag_top1" in first_step
    if config == "nsynth_mixup_denoise":
        assert {"mixup/loss", "denoise/mse", "mixup/accuracy"} <= set(first_step)


def test_the_loop_hands_sigterm_back_once_it_stops_training(in_process, tmp_path, monkeypatch):
    """After the last step the loop's SIGTERM handler (checkpoint at the next step) is gone: the
    final evaluation and the export run under the command's own (runtime.cli: one line, exit
    143), not under a handler nothing reads any more, which made a SIGTERM there a no-op."""
    from pretrain import export

    seen, bundle_model = [], export.bundle_model

    def spy(*args, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        return bundle_model(*args, **kwargs)

    monkeypatch.setattr(export, "bundle_model", spy)
    before = signal.getsignal(signal.SIGTERM)
    in_process("pretrain", tmp_path, "nsynth_mixup:encoder=compact", *TINY, *TINY_NSYNTH, "--config.train.num_steps=2")
    assert seen == [before]
