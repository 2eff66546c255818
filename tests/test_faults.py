"""Fault injection: runs SIGKILLed at random moments — and in the middle of checkpoint saves —
resume to exactly what an uninterrupted run computes; a full disk stops a run with one line
and leaves nothing half-written that a resume would use.

The 4-device variant is marked slow: `python -m pytest -m slow tests/test_faults.py`.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import REPO, TINY, pretrain, train_losses

STEPS = ("--config.train.num_steps=24", "--config.train.eval_every_steps=8")
OFTEN = ("--config.train.checkpoint_every_steps=2",)  # more saves, more chances to be killed inside one


def saving(workdir) -> bool:
    return any(workdir.glob("*/*.orbax-checkpoint-tmp*"))


def training(workdir) -> bool:
    path = workdir / "metrics.jsonl"
    return path.is_file() and '"train"' in path.read_text()


def kill(process, workdir, moment, rng) -> str:
    """SIGKILL `process` at `moment`: 'save' (as soon as a checkpoint is being written) or a
    random time up to `moment` seconds after training started. Returns what happened."""
    deadline = time.time() + 300
    while process.poll() is None and not (saving(workdir) if moment == "save" else training(workdir)):
        assert time.time() < deadline
        time.sleep(0.002)
    if moment != "save":
        time.sleep(rng.uniform(0, moment))
    if process.poll() is not None:
        return "finished first"
    caught_saving = saving(workdir)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "killed while saving" if caught_saving else "killed"


def final_parameters(workdir, step: int = 24, kind: str = "checkpoints") -> dict:
    """The model state at `step` as numpy arrays, whatever device count wrote it."""
    path = workdir / kind / str(step) / "state"
    checkpointer = ocp.PyTreeCheckpointer()
    metadata = checkpointer.metadata(path).item_metadata.tree
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
    return checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))["model"]


def assert_same_tree(a, b):
    flat_a, flat_b = (dict(ocp.tree.to_flat_dict(t)) for t in (a, b))
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        np.testing.assert_array_equal(np.asarray(flat_a[key]), np.asarray(flat_b[key]), err_msg=str(key))


def killed_and_resumed(start, workdir, moments, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    events = []
    for moment in moments:
        process = start(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        events.append(kill(process, workdir, moment, rng))
    result = start()
    assert result.returncode == 0, result.stderr[-3000:]
    return events


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, embedded_cache):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    env = dict(os.environ, OVERTONE_CACHE=str(embedded_cache), PYTHONPATH=str(REPO))
    env.pop("NSYNTH_DIR", None)
    pretrain(workdir, *STEPS, env=env)
    return workdir


def test_pretraining_killed_three_times_matches_an_uninterrupted_run(uninterrupted, subprocess_env, tmp_path):
    def start(**popen):
        return pretrain(tmp_path, *STEPS, *OFTEN, env=subprocess_env, check=False, **popen)

    events = killed_and_resumed(start, tmp_path, ["save", 3.0, "save"], seed=0)
    assert events.count("killed while saving") >= 1, events
    assert train_losses(tmp_path) == train_losses(uninterrupted)  # bit-identical on CPU
    assert_same_tree(final_parameters(tmp_path), final_parameters(uninterrupted))
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (tmp_path, uninterrupted))
    assert ours["test"] == theirs["test"] and ours["best_step"] == theirs["best_step"]
    for kind in ("checkpoints", "best"):  # every finished checkpoint left behind is readable
        for step in (p for p in (tmp_path / kind).iterdir() if p.name.isdigit()):
            assert final_parameters(tmp_path, int(step.name), kind)


@pytest.mark.slow
def test_four_device_run_killed_twice_matches_an_uninterrupted_four_device_run(subprocess_env, tmp_path):
    reference = tmp_path / "reference"
    pretrain(reference, *STEPS, env=subprocess_env, devices=4)

    def start(**popen):
        return pretrain(tmp_path / "killed", *STEPS, *OFTEN, env=subprocess_env, check=False, devices=4, **popen)

    killed_and_resumed(start, tmp_path / "killed", [2.0, "save"], seed=1)
    assert train_losses(tmp_path / "killed") == train_losses(reference)
    assert_same_tree(final_parameters(tmp_path / "killed"), final_parameters(reference))


def finetune(workdir, env, **popen):
    command = [
        sys.executable,
        "-m",
        "finetune",
        "--config=openmic_attention",
        f"--workdir={workdir}",
        "--config.data.embedded.clips=80",
        "--config.train.num_epochs=8",
        "--config.train.batch_size=16",
        "--config.train.log_every_steps=1",
        "--config.train.checkpoint_every_steps=2",
    ]
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_finetuning_killed_twice_matches_an_uninterrupted_run(subprocess_env, tmp_path):
    reference = finetune(tmp_path / "reference", subprocess_env)
    assert reference.returncode == 0, reference.stderr[-3000:]
    events = killed_and_resumed(
        lambda **p: finetune(tmp_path / "killed", subprocess_env, **p), tmp_path / "killed", ["save", 1.0], seed=2
    )
    assert "finished first" not in events, events
    assert train_losses(tmp_path / "killed") == train_losses(tmp_path / "reference")
    metrics = [json.loads((tmp_path / r / "report" / "metrics.json").read_text()) for r in ("killed", "reference")]
    assert metrics[0]["test"] == metrics[1]["test"]


def _full_disk(limit_bytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_a_full_disk_stops_the_run_with_one_line_and_a_rerun_recovers(uninterrupted, subprocess_env, tmp_path):
    command = [
        sys.executable,
        "-m",
        "pretrain",
        "--config=nsynth_mixup:encoder=compact",
        *TINY,
        "--config.data.embedded.pitch_step=12",
        "--config.data.embedded.velocities=(100,)",
        f"--workdir={tmp_path}",
        *STEPS,
    ]
    # files up to 2 MB can be written (logs, configs); the 9 MB checkpoint shard cannot
    full = subprocess.run(
        command, env=subprocess_env, capture_output=True, text=True, timeout=600, preexec_fn=_full_disk(2_000_000)
    )
    assert full.returncode == 1
    # orbax's writer threads print their own tracebacks on the way; ours is the one last line
    ours = [line for line in full.stderr.splitlines() if "cli.py" in line]
    assert len(ours) == 1 and "CheckpointWriteError: could not write" in ours[0]
    assert "disk full or not writable" in ours[0] and "rerun the same command" in ours[0]
    assert full.stderr.rstrip().endswith("rerun the same command to resume.")
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]  # nothing half-written used
    recovered = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert train_losses(tmp_path) == train_losses(uninterrupted)


def test_sigterm_while_the_data_is_prepared_says_so_and_the_rerun_cleans_up(subprocess_env, tmp_path):
    """Before the train loop takes SIGTERM over (here: rendering the embedded corpus into an
    empty cache), one line and exit status 143, not a silent death; the killed render's
    partial folder is removed by the next render, which completes."""
    from corpora.embedded import soundfont

    cache = tmp_path / "cache"
    env = dict(subprocess_env, OVERTONE_CACHE=str(cache))
    process = pretrain(tmp_path / "run", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    began = time.monotonic()
    while not list(cache.glob(".nsynth-soundfont-*.partial-*/**/*.wav")):
        assert process.poll() is None and time.monotonic() - began < 120, "the render never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    assert "stopped on SIGTERM outside the train loop" in stderr and "Traceback" not in stderr
    assert list(cache.glob(".nsynth-soundfont-*.partial-*"))  # what the killed render left
    root = soundfont.ensure_corpus(cache, pitch_step=12, velocities=(100,))
    assert (root / "nsynth-test" / "examples.json").is_file()
    assert not list(cache.glob(".nsynth-soundfont-*.partial-*"))
