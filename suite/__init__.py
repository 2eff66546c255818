"""Several stages for one table: pretrain each objective, probe each encoder, compare (`python -m suite`).

The suite owns no training code: it builds each pretraining config as the command line would
(`runtime.cli.build_config`), runs `pretrain.train_and_evaluate` into WORKDIR/pretrain/LABEL
(a finished run is reused, a stopped one resumed, a changed config refused as on the command
line), then `finetune.probe.probe` on each task into WORKDIR/probe/LABEL/TASK (run again each
time: seconds, from the embedding cache), with the bundle
as the only link between the two. `suite.table` turns the probes' reports into the table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ml_collections import ConfigDict

import corpora
from encoders.pretrained import check_source
from finetune.probe import check_grid, probe
from overtone.disk import write_text_atomic
from overtone.errors import BadValueError, OvertoneError, unknown_name
from pretrain.train import check_names, train_and_evaluate
from runtime import cli, processes
from suite.table import collect, figure, markdown

log = logging.getLogger(__name__)


def check_suite(config, catalog) -> dict[str, list[ConfigDict]]:
    """Everything the suite will run, built and checked before anything runs: label → the
    pretraining configs (one per pretraining seed). Refuses an unknown task, a config that is not
    a pretraining config or does not take an override, an encoder that cannot be loaded."""
    if config.seeds < 1:
        raise BadValueError(f"--config.seeds={config.seeds}: at least 1 seed is needed")
    if config.pretrain_seeds not in (1, config.seeds):
        raise BadValueError(
            f"--config.pretrain_seeds={config.pretrain_seeds}: 1 (one encoder probed with every seed) or "
            f"seeds={config.seeds} (an encoder per seed)"
        )
    if not config.tasks:
        raise BadValueError("--config.tasks is empty: name at least one task, e.g. ('nsynth_family',)")
    for task in config.tasks:
        corpora.get_dataset(task, "clips", where="--config.tasks")
    if len(set(config.tasks)) < len(config.tasks):
        raise BadValueError(f"--config.tasks={tuple(config.tasks)} names a task twice")
    check_grid(config.probe.grid, "--config.probe.grid")
    if not any(config.pretrain.values()) and not any(config.baselines.values()):
        raise BadValueError("--config.pretrain and --config.baselines name no encoder: the table would be empty")
    shared = sorted(set(config.pretrain) & set(config.baselines))
    if shared:
        raise BadValueError(f"row label(s) {shared} name both a pretraining run and a baseline")
    labels = [*_rows(config.pretrain), *_rows(config.baselines)]
    if config.reference and config.reference not in labels:
        raise unknown_name("row", config.reference, labels, where="--config.reference")
    for label, source in _rows(config.baselines).items():
        try:
            check_source(source)
        except OvertoneError as err:
            raise type(err)(f"--config.baselines.{label}: {err}") from None
    built = {}
    for label, entry in _rows(config.pretrain).items():
        spec, *own = entry.split()  # "SPEC [KEY=VALUE ...]": the row's own overrides come last
        try:
            kind = catalog.kind(catalog.load(catalog.resolve(spec)))
            if kind != "pretrain":
                raise BadValueError(f"{spec} is a {kind} config, not a pretraining one")
            pretraining = cli.build_config(catalog, spec, (*config.pretrain_overrides, *own))
            check_names(pretraining)  # registry names inside variants (encoder=…), before anything runs
        except OvertoneError as err:
            raise type(err)(f"--config.pretrain.{label}={entry}: {err}") from None
        built[label] = []
        for k in range(config.pretrain_seeds):
            one = ConfigDict(pretraining.to_dict())
            one.seed = pretraining.seed + k
            built[label].append(one)
    return built


def _rows(named) -> dict[str, str]:
    """label → spec of the rows a config section names; an empty spec leaves its row out."""
    return {label: spec for label, spec in named.items() if spec}


def probe_config(config, catalog, task: str, source: str, seed: int, seeds: int) -> ConfigDict:
    """The `probe` config with the suite's probe settings, for one table cell."""
    cell = catalog.load(catalog.resolve("probe"))
    for key, value in config.probe.items():
        cell[key] = value
    cell.task, cell.seed, cell.seeds = task, seed, seeds
    cell.encoder.source = source
    cli.absolute_paths(cell)
    return cell


def run_suite(config, workdir: str | Path, *, catalog=None) -> dict:
    """Pretrain, probe, tabulate; returns the table (also written to WORKDIR/table.{md,json,png})."""
    import configs

    catalog = catalog or configs
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise BadValueError(f"--workdir={workdir} is a file; the suite needs a folder")
    if (workdir / "config.json").is_file():
        raise BadValueError(f"--workdir={workdir} is a training run's work directory; give the suite its own folder")
    if processes.several():  # the probes have no multi-process path: one writer per file would break
        raise BadValueError("the suite runs in one process; run its pretraining configs with runtime.launch alone")
    built = check_suite(config, catalog)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for label, runs in built.items():
        sources, pretraining = [], []
        for pretraining_config in runs:
            run = workdir / "pretrain" / (label if len(runs) == 1 else f"{label}/seed{pretraining_config.seed}")
            log.info("suite: pretraining %s (%s) in %s", label, config.pretrain[label], run)
            summary = train_and_evaluate(pretraining_config, run)
            if not summary.get("export"):
                raise BadValueError(f"{run}: the pretraining run wrote no encoder bundle")
            sources.append(str(run))
            pretraining.append({"run": str(run), "seed": pretraining_config.seed} | _pretraining_facts(summary))
        rows[label] = {"kind": "pretrained", "config": config.pretrain[label], "sources": sources}
        rows[label]["pretraining"] = pretraining
    for label, source in _rows(config.baselines).items():
        rows[label] = {"kind": "baseline", "config": source, "sources": [source]}
    for label, row in rows.items():
        row["probes"] = {}
        for task in config.tasks:
            folder = workdir / "probe" / label / task
            if len(row["sources"]) == 1:  # one encoder (or a random:NAME drawn anew per seed), every seed
                cells = [(folder, row["sources"][0], config.seed, config.seeds)]
            else:  # encoder k with probe seed k
                cells = [(folder / f"encoder{k}", s, config.seed + k, 1) for k, s in enumerate(row["sources"])]
            runs = []
            for where, source, seed, seeds in cells:
                log.info("suite: probing %s on %s (%d seed(s)) in %s", label, task, seeds, where)
                runs += probe(probe_config(config, catalog, task, source, seed, seeds), where)["runs"]
            row["probes"][task] = runs
    table = collect(rows, config.reference)
    text = markdown(table, config)
    write_text_atomic(workdir / "table.md", text)
    write_text_atomic(workdir / "table.json", json.dumps({"config": config.to_dict(), **table}, indent=2))
    figure(table, workdir / "table.png")
    return {"table": text, "workdir": str(workdir), **table}


def _pretraining_facts(summary: dict) -> dict:
    """What the pretraining run says of the encoder it exported: its step, validation loss and the
    evaluator's probe and collapse diagnostics at that step, and the probe before training."""
    best = summary.get("best_validation") or {}
    keep = ("loss", "probe_accuracy", "embedding_rankme", "embedding_rank_fraction", "embedding_dead_fraction")
    facts = {"best_step": summary.get("best_step"), "final_step": summary.get("final_step")}
    initial = summary.get("initial") or {}
    if "probe_accuracy" in initial:
        facts["initial_probe_accuracy"] = initial["probe_accuracy"]
    return facts | {k: best[k] for k in keep if k in best} | {"export": summary.get("export")}
