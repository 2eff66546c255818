"""Pretraining: corpus → front-end → encoder → objective, trained by the shared loop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
from flax import nnx

import encoders
import objectives
from corpora import get_dataset
from corpora.pcm_cache import open_cache
from corpora.pipeline import evaluation_batches, steps_per_epoch, training_batches
from encoders.augment import MaskedPatches, active
from encoders.compute import apply_compute
from encoders.vggish import NO_GRADIENT
from overtone.audio import BadFileLog, set_max_seconds
from overtone.errors import BadValueError
from pretrain.evaluators import build_evaluator, check_evaluator
from runtime import cli, processes
from runtime.loop import Data, check_batch, fit
from runtime.optim import check_optimizer

log = logging.getLogger(__name__)


class Pretrainer(nnx.Module):
    """The trained pair: a registered encoder and the objective (its heads) on top."""

    def __init__(self, encoder: nnx.Module, objective: nnx.Module):
        self.encoder = encoder
        self.objective = objective


def build_model(config, num_classes: dict[str, int]) -> Pretrainer:
    rngs = nnx.Rngs(config.seed)
    encoder = apply_compute(encoders.build_encoder(config.encoder, rngs=rngs), **config.get("compute", {}))
    frontend = encoders.build_frontend(config.frontend)
    context = objectives.Context(
        embedding_dim=encoder.embedding_dim, num_classes=num_classes, num_bands=frontend.num_bands, rngs=rngs
    )
    return Pretrainer(encoder, objectives.build_objective(config.objective, context))


def _warn_if_targets_unseen(config, corpus) -> None:
    """Instrument targets cannot be validated on NSynth's official splits, whose valid and test
    instruments are all unseen in train (Zhong et al. pooled the splits for their 1006 classes)."""
    if config.objective.get("target") != "instrument":
        return
    seen = {n.instrument for n in corpus.splits["train"]}
    unseen = sum(n.instrument not in seen for n in corpus.splits["valid"])
    if unseen:
        log.warning(
            "objective.target='instrument' but %d of %d validation notes are from instruments absent "
            "from train: validation accuracy and early stopping are meaningless for them",
            unseen,
            len(corpus.splits["valid"]),
        )


def _exporter(config, workdir: Path):
    """The loop's end-of-run hook: the best model it holds becomes WORKDIR/export (no checkpoint
    is read back)."""
    from pretrain.export import bundle_model

    def export(model: Pretrainer, evaluated: dict) -> dict:
        folder = bundle_model(model.encoder, config.to_dict(), workdir / "export", run=workdir, checkpoint=evaluated)
        return {"export": str(folder)}

    return export


def check_names(config) -> None:
    """Every registry name (and encoder / front-end option) the config uses, checked before any
    data is read, so a typo costs a second, not a corpus scan."""
    get_dataset(config.data.dataset)
    encoders.check_encoder(config.encoder)
    encoders.build_frontend(config.frontend)
    objectives.check_objective(config.objective)
    check_optimizer(config.optimizer)
    check_evaluator(config)
    if config.encoder.get("postprocess"):
        raise BadValueError(NO_GRADIENT.format(where="encoder.postprocess=True", way="train without it"))
    if active(config.spec_augment.to_dict()) and objectives.reconstructs_input(config.objective):
        raise BadValueError(
            "spec_augment masks the input patches, which a denoising objective reconstructs; "
            "use its own corruption (objective.noise) instead"
        )


def corpus_paths(corpus) -> list[str]:
    """Every audio file the corpus's splits read."""
    return sorted({str(record.path) for records in corpus.splits.values() for record in records})


def train_and_evaluate(config, workdir: str | Path) -> dict:
    """Pretrain as `config` says, writing everything to (and resuming from) `workdir`."""
    check_names(config)
    with config.unlocked():  # recorded as completed: the run's config names every encoder option it used
        config.encoder = encoders.match_frontend(config.encoder.to_dict(), config.frontend.to_dict())
    cli.check_workdir_early(workdir, config)
    data_cfg = config.data
    set_max_seconds(data_cfg.get("max_seconds", 3600.0))
    bad_log = BadFileLog(data_cfg.max_bad_fraction)
    corpus = get_dataset(data_cfg.dataset)(data_cfg, bad_log=bad_log)
    check_batch(config.train.batch_size)
    frontend = encoders.build_frontend(config.frontend)
    cache = open_cache(data_cfg.pcm_cache, corpus.root, corpus_paths(corpus))
    loader = corpus.make_loader(
        frontend.samples_for_patches(data_cfg.segment_patches),
        int(data_cfg.crop_max_offset_seconds * frontend.sample_rate),
        bad_log,
        frontend.sample_rate,
        **({"read": cache.load} if cache is not None else {}),
    )
    evaluator = build_evaluator(config, corpus, loader, frontend)
    # only once the data (and what the evaluator reads) is there: a refusal leaves nothing behind
    workdir = cli.prepare_workdir(workdir, config)
    _warn_if_targets_unseen(config, corpus)
    model = build_model(config, corpus.num_classes)
    log.info(
        "encoder %s: %d parameters; objective %s",
        config.encoder.name,
        encoders.parameter_count(model.encoder),
        config.objective.name,
    )
    if processes.primary():
        corpus.save_artifacts(workdir)
    shared = dict(
        batch_size=config.train.batch_size,
        workers=data_cfg.workers,
        prefetch=data_cfg.prefetch,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    splits = corpus.splits
    data = Data(
        train=lambda start: training_batches(splits["train"], loader, seed=config.seed, start_step=start, **shared),
        steps_per_epoch=steps_per_epoch(len(splits["train"]), config.train.batch_size),
        validation=lambda: evaluation_batches(splits["valid"], loader, **shared),
        final={"test": lambda: evaluation_batches(splits["test"], loader, **shared)} if splits["test"] else {},
        report=_exporter(config, workdir) if config.get("export", False) else None,
        evaluate_model=evaluator,
        agree={f"{name} records": processes.digest(records) for name, records in splits.items()},
    )

    if not splits["test"]:  # e.g. a tag manifest without a split column: train and validation only
        log.warning("the corpus has no test split: the run reports validation metrics only")
    spec = config.spec_augment.to_dict()

    def loss_fn(model: Pretrainer, batch, key, train: bool):
        masked = MaskedPatches(frontend, jax.random.fold_in(key, 1000), spec) if train and active(spec) else frontend
        return model.objective(model.encoder, masked, batch, key, train=train)

    summary = fit(model, loss_fn, data, config, workdir)
    bad_log.check(final=True)
    summary["data"] = corpus.report | {"unreadable_at_train_time": bad_log.summary()}
    if "report" in summary:  # written this time (a finished run's summary already names its export)
        summary["export"] = summary.pop("report")["export"]
        log.info("encoder bundle written to %s", summary["export"])
    if summary.get("export") and not (Path(summary["export"]) / "manifest.json").is_file():
        rerun = f"python -m pretrain.export --run={workdir}"
        log.warning("the bundle %s is gone; write it again with: %s", summary["export"], rerun)
    if processes.primary():
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
