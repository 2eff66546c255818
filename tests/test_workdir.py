"""A work directory is one run: the same config resumes, another is refused with nothing changed,
--fresh moves the old run aside, and one process at a time works in it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import pytest
from conftest import REPO

from runtime.workdir import WorkdirError, differing_keys, fingerprint, open_workdir, release

CONFIG = {
    "seed": 0,
    "train": {"batch_size": 64, "log_every_steps": 10, "num_steps": 200},
    "data": {"root": "/data/nsynth", "workers": 2},
    "optimizer": {"learning_rate": 1e-4},
}


def tree_digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def changed(**sections) -> dict:
    config = json.loads(json.dumps(CONFIG))
    for section, values in sections.items():
        if isinstance(values, dict):
            config[section].update(values)
        else:
            config[section] = values
    return config


@pytest.fixture
def run(tmp_path):
    folder = open_workdir(tmp_path / "run", CONFIG)
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    yield folder
    release(folder)


def test_created_with_its_config_and_reopened_by_the_same_one(run):
    assert json.loads((run / "config.json").read_text()) == CONFIG
    open_workdir(run, CONFIG)
    open_workdir(run, changed(train={"log_every_steps": 1}, data={"workers": 8}))  # operational keys only
    assert len((run / "command.txt").read_text().splitlines()) == 3  # every command, appended
    assert json.loads((run / "config.json").read_text()) == CONFIG  # the creating config stays


@pytest.mark.parametrize(
    "other",
    [
        changed(train={"batch_size": 32}),
        changed(optimizer={"learning_rate": 1e-3}),
        changed(data={"root": "/data/other"}),
        changed(seed=1),
        {**CONFIG, "frontend": {"name": "logmel"}},
    ],
)
def test_another_config_is_refused_with_nothing_changed(run, other):
    before = tree_digest(run)
    keys = differing_keys(CONFIG, other)
    assert keys and fingerprint(CONFIG) != fingerprint(other)
    with pytest.raises(WorkdirError, match="holds a run with another config") as refused:
        open_workdir(run, other)
    for key in keys:
        assert key in str(refused.value)
    assert "--fresh" in str(refused.value) and "\n" not in str(refused.value)
    assert tree_digest(run) == before


def test_a_run_recorded_before_a_key_was_added_resumes_under_its_old_behaviour(run):
    """ADDED_KEYS: today's configs name data.splits etc.; a run recorded without them resumes
    when they hold the value that does what it did, and is refused when they do not."""
    from runtime.workdir import ADDED_KEYS

    today = changed(data={"splits": "official", "augment": {"chain_prob": 1.0}})
    assert {"data.splits", "data.augment.chain_prob"} <= set(ADDED_KEYS)
    assert fingerprint(today) == fingerprint(CONFIG) and not differing_keys(CONFIG, today)
    open_workdir(run, today)
    other = changed(data={"splits": "zhong_pooled"})
    with pytest.raises(WorkdirError, match=r"data.splits: '<absent>' → 'zhong_pooled'"):
        open_workdir(run, other)


def test_fresh_moves_the_old_run_aside(run):
    release(run)
    open_workdir(run, changed(seed=1), fresh=True)
    aside = [p for p in run.parent.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and (aside[0] / "metrics.jsonl").is_file()
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert not (run / "metrics.jsonl").exists()
    release(run)


def test_a_file_is_not_a_work_directory(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(WorkdirError, match="is a file"):
        open_workdir(tmp_path / "x", CONFIG)


def test_one_process_per_work_directory(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.argv = ['python -m pretrain --config=nsynth_mixup']\n"
                "from runtime.workdir import open_workdir\n"
                f"open_workdir({str(tmp_path / 'run')!r}, {CONFIG!r}); print('held', flush=True); time.sleep(60)"
            ),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkdirError, match=rf"in use by pid {holder.pid} .*python -m pretrain"):
            open_workdir(tmp_path / "run", CONFIG)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10
    while True:  # the kernel releases the lock with the process, however it ended
        try:
            open_workdir(tmp_path / "run", CONFIG)
            break
        except WorkdirError:
            assert time.time() < deadline
            time.sleep(0.1)
    release(tmp_path / "run")


def test_a_folder_that_holds_no_run_is_never_adopted_or_moved(tmp_path):
    """--workdir=. in a folder of one's own files, or a run whose config.json was deleted: refused,
    also with --fresh (which only ever moves a run aside)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    for fresh in (False, True):
        with pytest.raises(WorkdirError, match="is not empty and holds no run"):
            open_workdir(mine, CONFIG, fresh=fresh)
    assert (mine / "thesis.tex").read_text() == "precious" and not (mine / "config.json").exists()


def test_broken_records_and_unusable_paths_are_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    for text in ("[1, 2]", "null"):
        (tmp_path / "run" / "config.json").write_text(text)
        with pytest.raises(WorkdirError, match="holds no config"):
            open_workdir(tmp_path / "run", CONFIG)
    (tmp_path / "afile").write_text("")
    with pytest.raises(WorkdirError, match="cannot create the work directory"):
        open_workdir(tmp_path / "afile" / "sub", CONFIG)


def test_fresh_twice_in_one_second_keeps_both_old_runs(tmp_path):
    for seed in (1, 2, 3):
        open_workdir(tmp_path / "run", changed(seed=seed), fresh=True)
        release(tmp_path / "run")
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]) == 2


@pytest.mark.parametrize("name", ["nsynth_mixup", "irmas_finetune", "probe"])
def test_every_result_determining_key_of_a_shipped_config_is_refused(tmp_path, name):
    """Each leaf of the resolved config, changed alone, is refused with nothing on disk modified
    — unless it is one of the operational keys the README lists, which may change on resume."""
    import configs
    from runtime.workdir import OPERATIONAL, flatten

    config = json.loads(configs.load(configs.resolve(name)).to_json_best_effort())
    folder = open_workdir(tmp_path / "run", config)
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    release(folder)
    before = tree_digest(folder)
    refused = operational = 0
    for key, value in flatten(config).items():
        other = json.loads(json.dumps(config))
        *parents, leaf = key.split(".")
        node = other
        for parent in parents:
            node = node[parent]
        node[leaf] = [value, "changed"] if not isinstance(value, str) else value + "-changed"
        if key in OPERATIONAL or any(key.endswith("." + k) for k in OPERATIONAL):
            open_workdir(folder, other)  # allowed on resume
            release(folder)
            operational += 1
            continue
        with pytest.raises(WorkdirError, match=f"another config \\({key}: "):
            open_workdir(folder, other)
        refused += 1
    assert refused > 20 and operational >= 3
    digest = tree_digest(folder)
    # every command appends itself to command.txt and writes itself into .lock (holder, time)
    rewritten = ("command.txt", ".lock")
    assert {k: v for k, v in digest.items() if k not in rewritten} == {
        k: v for k, v in before.items() if k not in rewritten
    }
