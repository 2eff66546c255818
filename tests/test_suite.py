"""The objectives table (`python -m suite`): the table's arithmetic, refusals before any work, and
one suite end to end — pretrain, probe, tabulate, then a rerun that reuses every run."""

import json

import numpy as np
import pytest
from conftest import configured

from overtone.errors import OvertoneError
from suite import run_suite
from suite.table import collect, verdict

SMALL = (
    "train.num_steps=2",
    "train.batch_size=8",
    "train.eval_every_steps=2",
    "data.embedded.pitch_step=12",
    "data.embedded.velocities=(100,)",
)


def _probe_run(folder, test: dict):
    (folder / "report").mkdir(parents=True)
    (folder / "report" / "metrics.json").write_text(json.dumps({"test": test}))
    return str(folder)


def test_the_table_is_numpys_mean_and_sample_std_and_judges_against_the_reference(tmp_path):
    accuracy = {"a": [0.50, 0.56, 0.53], "random": [0.40, 0.42, 0.41]}
    lrap = {"a": [0.70, 0.71, 0.69], "random": [0.69, 0.73, 0.71]}
    rows = {}
    for label in accuracy:
        family = [
            _probe_run(tmp_path / label / f"f{k}", {"single_label": {"accuracy": v}, "lrap": 0.0, "map": 0.0})
            for k, v in enumerate(accuracy[label])
        ]
        irmas = [
            _probe_run(tmp_path / label / f"i{k}", {"lrap": v, "map": 0.5, "openmic_f1": 0.1})
            for k, v in enumerate(lrap[label])
        ]
        rows[label] = {"kind": "baseline", "sources": [label], "probes": {"nsynth_family": family, "irmas": irmas}}
    table = collect(rows, "random")
    a = table["rows"][0]
    assert list(a["cells"]["nsynth_family"]) == ["accuracy"] and list(a["cells"]["irmas"]) == ["lrap", "map"]
    cell = a["cells"]["nsynth_family"]["accuracy"]
    assert cell["mean"] == pytest.approx(np.mean(accuracy["a"])) and cell["std"] == pytest.approx(0.03)
    # hand-worked: (0.53 − 0.41) / max(0.03, 0.01) = 4σ → beats; LRAP (0.70 − 0.71) / 0.02 = −0.5σ → within
    assert a["verdict"]["nsynth_family"]["sigmas"] == pytest.approx(4.0)
    assert a["verdict"]["nsynth_family"]["call"] == "beats"
    assert a["verdict"]["irmas"]["sigmas"] == pytest.approx(-0.5) and a["verdict"]["irmas"]["call"] == "within"
    assert "verdict" not in table["rows"][1]  # the reference is not judged against itself
    worse = verdict({"mean": 0.3, "std": 0.01}, {"mean": 0.4, "std": 0.02})
    assert worse["call"] == "below" and worse["sigmas"] == pytest.approx(-5.0)


@pytest.mark.parametrize(
    "override, message",
    [
        ("tasks=('nsynth_famly',)", "unknown downstream dataset 'nsynth_famly'"),
        ("pretrain_seeds=2", "pretrain_seeds=2: 1"),
        ("reference=randum", "unknown row 'randum'"),
        ("baselines.random=random:vgish", "--config.baselines.random: --encoder=random:vgish: unknown encoder"),
        ("pretrain.mixup=nsynth_mixup:encodr=compact", "--config.pretrain.mixup=nsynth_mixup:encodr=compact"),
        ("pretrain.mixup=irmas_finetune", "is a finetune config"),
        ("pretrain.mixup=probe", "probe is a probe config"),
        ("pretrain.mixup=nsynth_mixup:encoder=nosuch", "--config.pretrain.mixup=nsynth_mixup:encoder=nosuch: unknown"),
        ("tasks=('nsynth_family','nsynth_family')", "names a task twice"),
        ("probe.grid.learning_rate=()", "--config.probe.grid.learning_rate is empty"),
        ("probe.grid.learning_rate=(-0.1,)", "--config.probe.grid.learning_rate: -0.1 is not a finite number > 0"),
        ("probe.grid.weight_decay=(-0.001,)", "--config.probe.grid.weight_decay: -0.001 is not a finite number >= 0"),
        ("pretrain_overrides=('train.num_stepz=2',)", "has no key 'num_stepz'"),
        ("pretrain.textual=nsynth_textual objective.centr=False", "objective has no key 'centr'"),
        ("pretrain.textual=nsynth_textual objective.centre", "expected KEY=VALUE"),
    ],
)
def test_a_bad_suite_is_refused_in_one_line_before_anything_is_written(override, message, tmp_path):
    config = configured("objectives_table", override)
    with pytest.raises(OvertoneError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_suite(config, tmp_path / "suite")
    assert not (tmp_path / "suite").exists()


def test_the_suite_pretrains_probes_tabulates_and_reuses_its_runs(tmp_path, in_process):
    del in_process  # the shared embedded corpus and compilation cache, and the runs' locks released
    overrides = (
        "pretrain.mixup=nsynth_mixup:encoder=compact optimizer.learning_rate=1e-3",
        "pretrain.denoise_add=",
        "pretrain.denoise_mul=",
        "pretrain.textual=",
        "tasks=('nsynth_family',)",
        "seeds=2",
        f"pretrain_overrides={SMALL!r}",
        "probe.data.nsynth.embedded.pitch_step=12",
        "probe.data.nsynth.embedded.velocities=(100,)",
        "probe.epochs=3",
    )
    workdir = tmp_path / "suite"
    first = run_suite(configured("objectives_table", *overrides), workdir)
    assert [row["label"] for row in first["rows"]] == ["mixup", "logmel_stats", "random"]
    for row in first["rows"]:
        cell = row["cells"]["nsynth_family"]["accuracy"]
        assert len(cell["values"]) == 2 and all(0.0 <= v <= 1.0 for v in cell["values"])
        for run in row["runs"]["nsynth_family"]:  # each number comes from a probe report of that encoder
            assert json.loads((tmp_path / run / "config.json").read_text())["encoder"] == row["sources"][0]
    assert first["rows"][1]["sources"] == ["random:logmel_stats"]
    recorded = json.loads((workdir / "pretrain" / "mixup" / "config.json").read_text())
    assert recorded["optimizer"]["learning_rate"] == 1e-3  # the row's own override, after the shared ones
    pretraining = first["rows"][0]["pretraining"][0]
    assert pretraining["best_step"] == 2 and 0.0 <= pretraining["probe_accuracy"] <= 1.0
    assert (workdir / "pretrain" / "mixup" / "export" / "manifest.json").is_file()
    for name in ("table.md", "table.json", "table.png"):
        assert (workdir / name).stat().st_size > 0
    assert "| mixup |" in (workdir / "table.md").read_text() and "Against `random`" in first["table"]
    metrics = (workdir / "pretrain" / "mixup" / "metrics.jsonl").read_text()

    again = run_suite(configured("objectives_table", *overrides), workdir)
    assert (workdir / "pretrain" / "mixup" / "metrics.jsonl").read_text() == metrics  # reused, not retrained
    assert again["rows"] == first["rows"]
    changed = configured("objectives_table", *overrides[:-4], "pretrain_overrides=('train.num_steps=3',)")
    assert changed.pretrain.mixup.endswith("learning_rate=1e-3")
    with pytest.raises(OvertoneError, match="another config"):
        run_suite(changed, workdir)


def test_a_multi_process_suite_is_refused(monkeypatch, tmp_path):
    from runtime import processes

    monkeypatch.setattr(processes, "several", lambda: True)
    with pytest.raises(OvertoneError, match="the suite runs in one process"):
        run_suite(configured("objectives_table"), tmp_path / "suite")
    assert not (tmp_path / "suite").exists()
