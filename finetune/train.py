"""Downstream training on the shared loop, in three modes (`config.mode`):

* `features` — OpenMIC-2018's shipped VGGish features (scaled to [0, 1]) feed the head: no
  audio, no encoder (Gururani et al.).
* `frozen` — a pretrained (or random) encoder embeds every clip once, into the on-disk
  embedding cache (`finetune.embedding_cache`); the head trains on the cached sequences.
* `finetune` — encoder and head train end to end on audio crops of `window_patches` patches
  (Zhong et al.: 1-s slices, BCE), the encoder at `optimizer.encoder_lr_scale` × the rate.

In every mode the head sees windows of `protocol.window_patches` consecutive embeddings
(one every `protocol.patch_hop_seconds`): a random window per training step, the centre one
for the validation loss, and at evaluation the mean over all windows (`finetune.protocol`).
The loss is binary cross-entropy over observed labels only; the checkpoint with the best
validation loss is evaluated and reported (metrics.json, report.md, figures).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import corpora
import encoders
from corpora import ClipSet
from corpora.augment import AudioEffects
from corpora.pipeline import evaluation_batches, steps_per_epoch, training_batches
from encoders.augment import MaskedPatches, active, mixup
from encoders.compute import apply_compute
from encoders.embedding import embed_sequences, with_patch_hop
from encoders.pretrained import check_source, load_encoder
from encoders.vggish import NO_GRADIENT
from finetune import embedding_cache, forest, protocol
from finetune.heads import build_head, check_head, masked_bce
from finetune.report import write_report
from overtone.audio import BadFileLog, decode_many, load_crop, set_max_seconds
from overtone.disk import cache_root
from overtone.errors import BadValueError, unknown_name
from runtime import cli, processes
from runtime.loop import Data, check_batch, fit
from runtime.optim import check_optimizer

log = logging.getLogger(__name__)
MODES = ("features", "frozen", "finetune")
# the checkpoint with the lowest validation loss, the last one, or the best validation metric (at
# the run's threshold; modes features and frozen, whose validation clips are scored cheaply)
SELECT_BY = ("loss", "last", "openmic_f1", "f1_macro", "f1_micro", "lrap", "map")


class Head(nnx.Module):
    """A classifier head on embedding sequences (modes `features` and `frozen`)."""

    def __init__(self, head: nnx.Module):
        self.head = head

    def __call__(self, x, *, key=None, train=False):
        return self.head(x, key=key, train=train)


def ENCODER_PARAMS(path: tuple, _value) -> bool:  # noqa: N802 - an nnx filter, named like one
    """The encoder's parameters in a fine-tuned model (`optimizer.encoder_lr_scale` applies to them)."""
    return path[:1] == ("encoder",)


class EncoderWithHead(nnx.Module):
    """Encoder and head trained together on waveforms (mode `finetune`); SpecAugment masks the
    training patches when `spec` asks for masks."""

    def __init__(self, encoder: nnx.Module, head: nnx.Module, frontend, spec: dict | None = None):
        self.encoder, self.head, self.frontend = encoder, head, frontend
        self.spec = tuple(sorted((spec or {}).items()))  # static, hashable

    def __call__(self, x, *, key=None, train=False):
        spec = dict(self.spec)
        frontend = (
            MaskedPatches(self.frontend, jax.random.fold_in(key, 1000), spec)
            if train and active(spec)
            else self.frontend
        )
        return self.head(encoders.encode_clips(self.encoder, frontend, x), key=key, train=train)


def mix_examples(batch: dict, key: jax.Array, *, prob: float, alpha: float, labels: str) -> dict:
    """Mixup across the batch (each example with its neighbour, λ ~ Beta(α, α), applied to a
    whole batch with probability `prob`): inputs mixed by λ; targets the union of both label
    sets (`labels='union'`) or λ-weighted (`'soft'`); a label counts only where both examples
    observe it, an example only when both loaded."""
    x, soft, weight, lam = mixup(key, batch["x"], batch["y"], batch["weight"], prob=prob, alpha=alpha)
    mixed = lam < 1.0
    partner = lambda v: jnp.roll(v, 1, axis=0)  # noqa: E731
    union = jnp.maximum(batch["y"], partner(batch["y"]))
    y = soft if labels == "soft" else jnp.where(mixed, union, batch["y"])
    observed = batch["observed"] * jnp.where(mixed, partner(batch["observed"]), 1.0)
    return {"x": x, "y": y, "observed": observed, "weight": weight}


def finetune_and_evaluate(config, workdir: str | Path) -> dict:
    check_names(config)
    cli.check_workdir_early(workdir, config)
    set_max_seconds(config.data.get("max_seconds", 3600.0))
    clips = corpora.get_dataset(config.data.dataset, "clips")(config.data, config.seed)
    clips.keep_fraction("train", config.data.get("train_fraction", 1.0), seed=config.seed)
    check_batch(config.train.batch_size)
    loaded = _load_encoder(config) if config.mode != "features" else None
    if config.mode == "finetune":
        _check_trainable(config, loaded)
    # only once the data and encoder are there (a typo leaves nothing behind); the encoder's weight
    # checksum joins the run's fingerprint: the same --encoder path holding other weights is another run
    identity = {"encoder_weights": loaded.checksum} if loaded is not None else {}
    workdir = cli.prepare_workdir(workdir, config, identity)
    bad_log = BadFileLog(config.data.max_bad_fraction)
    size = config.protocol.window_patches
    info: dict = {"mode": config.mode}
    if config.model.name == "forest":  # fitted, not trained: the loop is not entered
        sequences = _fixed_sequences(config, loaded, clips, bad_log, workdir, info)
        rule = dict(threshold=_threshold(config.evaluation.threshold), grid=_grid(config))
        summary = forest.fit_and_report(config, clips, sequences, workdir, info, **rule)
        return _finish(summary, config, clips, bad_log, workdir, info)
    if config.mode == "finetune":
        model, load, score = _finetune_setup(config, loaded, clips, bad_log, info)
    else:
        model, load, score = _head_setup(config, loaded, clips, bad_log, workdir, info)

    mix = config.mix

    def loss_fn(model, batch, key, train: bool):
        if train and mix.prob > 0:
            key, mix_key = jax.random.split(key)
            batch = mix_examples(batch, mix_key, prob=mix.prob, alpha=mix.alpha, labels=mix.labels)
        probabilities = model(batch["x"], key=key, train=train)
        return masked_bce(probabilities, batch["y"], batch["observed"] * batch["weight"][:, None]), {}

    shared = dict(
        batch_size=config.train.batch_size,
        workers=config.data.workers,
        prefetch=config.data.prefetch,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    rows = {split: list(range(len(paths))) for split, paths in clips.paths.items()}

    def report(model, evaluated: dict) -> dict:
        scores = {split: score(model, split, size) for split in ("valid", "test")}
        results = protocol.evaluate(scores, clips, _threshold(config.evaluation.threshold), grid=_grid(config))
        title = f"{clips.name}: {config.mode} {config.model.name} head ({info.get('encoder', 'shipped features')})"
        write_report(workdir / "report", results, title=title)
        return results

    evaluate_model = None
    if config.train.get("select_by", "loss") not in ("loss", "last"):

        def evaluate_model(model) -> dict[str, float]:
            """The validation clips scored as at the end, their metrics at the run's threshold."""
            scores = {"valid": score(model, "valid", size)}
            found = protocol.evaluate(scores, clips, _threshold(config.evaluation.threshold), grid=_grid(config))
            return {name: found["valid"][name] for name in SELECT_BY[2:]}

    data = Data(
        train=lambda start: training_batches(
            rows["train"], load("train"), seed=config.seed, start_step=start, **shared
        ),
        steps_per_epoch=steps_per_epoch(len(rows["train"]), config.train.batch_size),
        validation=lambda: evaluation_batches(rows["valid"], load("valid"), **shared),
        report=report,
        evaluate_model=evaluate_model,
        agree={
            f"{split} clips": processes.digest([str(p) for p in paths], clips.targets[split].tolist())
            for split, paths in clips.paths.items()
        },
    )
    lr_scales = [(ENCODER_PARAMS, config.optimizer.get("encoder_lr_scale", 1.0))]
    summary = fit(model, loss_fn, data, config, workdir, lr_scales=lr_scales)
    return _finish(summary, config, clips, bad_log, workdir, info)


def _finish(summary: dict, config, clips: ClipSet, bad_log: BadFileLog, workdir: Path, info: dict) -> dict:
    """The run's summary with the data it used, written by process 0."""
    bad_log.check(final=True)
    summary["data"] = (
        {
            "root": str(clips.root),
            "embedded": clips.embedded,
            **{split: len(paths) for split, paths in clips.paths.items()},
            "unreadable": bad_log.summary(),
        }
        | ({"validation": clips.validation} if clips.validation else {})
        | info
    )
    if processes.primary():
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def check_names(config) -> None:
    """Every name the config uses (mode, dataset, head, encoder, front-end, options), checked
    before any data is read or embedded."""
    names = {
        "mode": (config.mode, MODES),
        "protocol.scale": (config.protocol.scale, ("none", "minmax")),
        "mix.labels": (config.mix.labels, ("union", "soft")),
    }
    for where, (value, valid) in names.items():
        if value not in valid:
            raise unknown_name("value", value, valid, where=f"config.{where}")
    select_by = config.train.get("select_by", "loss")
    if select_by not in SELECT_BY:
        raise unknown_name("metric", select_by, SELECT_BY, where="config.train.select_by")
    if select_by not in ("loss", "last") and config.mode == "finetune":
        raise BadValueError(
            f"config.train.select_by={select_by}: a validation metric selects in modes features and frozen; "
            "mode finetune selects by loss or last"
        )
    _grid(config)
    check_optimizer(config.optimizer)
    corpora.get_dataset(config.data.dataset, "clips")
    if config.model.name == "forest":
        forest.check_forest(config.model)
        if config.mode == "finetune":
            raise BadValueError("model.name='forest' is fitted on fixed embeddings: use mode 'features' or 'frozen'")
    else:
        check_head(config.model)
    if config.mode != "features":
        source = config.encoder.source or f"random:{config.encoder.name}"
        check_source(source, {k: v for k, v in config.encoder.items() if k not in ("source", "name")})
        if source.startswith("random:"):
            encoders.build_frontend(config.frontend)


def _grid(config) -> np.ndarray:
    return protocol.threshold_grid(*config.evaluation.get("threshold_grid", (0.05, 0.95, 0.01)))


def _threshold(value: str) -> float | str:
    return value if value == "validation" else float(value)


def _example(x, clips: ClipSet, split: str, row: int, weight: float = 1.0) -> dict[str, np.ndarray]:
    return {
        "x": x,
        "y": clips.targets[split][row],
        "observed": clips.observed[split][row].astype(np.float32),
        "weight": np.float32(weight),
    }


def _fixed_sequences(config, loaded, clips: ClipSet, bad_log: BadFileLog, workdir: Path, info: dict):
    """Modes `features` and `frozen`: split → each clip's fixed embedding sequence."""
    if config.mode == "features":
        if clips.features is None:
            raise BadValueError(f"mode 'features' needs shipped features; {clips.name} has none (use mode 'frozen')")
        return {split: list(f.astype(np.float32) / 255.0) for split, f in clips.features.items()}
    sequences = _frozen_sequences(config, loaded, clips, bad_log, info)
    return _minmax(sequences, workdir) if config.protocol.scale == "minmax" else sequences


def _head_setup(config, loaded, clips: ClipSet, bad_log: BadFileLog, workdir: Path, info: dict):
    """Modes `features` and `frozen`: the head on fixed embedding sequences."""
    size = config.protocol.window_patches
    sequences = _fixed_sequences(config, loaded, clips, bad_log, workdir, info)
    width = sequences["train"][0].shape[-1]
    model = Head(build_head(config.model, len(clips.classes), width, rngs=nnx.Rngs(config.seed)))

    def load(split: str):
        return window_loader(sequences[split], clips, split, size)

    predict = nnx.jit(lambda model, x: model(x))  # one compilation for every evaluation

    def score(model: Head, split: str, size: int) -> np.ndarray:
        return protocol.averaged_scores(lambda x: predict(model, jnp.asarray(x)), sequences[split], size)

    return model, load, score


def window_loader(sequences: list[np.ndarray], clips: ClipSet, split: str, size: int):
    """row, rng → one example: a random window of `size` embeddings (the centre one without rng)."""

    def load_row(row: int, rng) -> dict[str, np.ndarray]:
        stacked, _ = protocol.windows([sequences[row]], size)
        pick = int(rng.integers(len(stacked))) if rng is not None else len(stacked) // 2
        return _example(stacked[pick], clips, split, row)

    return load_row


def _frozen_sequences(config, loaded, clips: ClipSet, bad_log: BadFileLog, info: dict) -> dict[str, list[np.ndarray]]:
    loaded.encoder.eval()
    frontend = with_patch_hop(loaded.frontend, config.protocol.patch_hop_seconds)
    cache_dir = Path(config.data.embedding_cache or cache_root() / "embeddings")
    sequences, cache = embedding_cache.cached_sequences(
        loaded.encoder, frontend, loaded.checksum, clips.paths, cache_dir, bad_log
    )
    info |= {"encoder": loaded.source, "encoder_checksum": loaded.checksum, "embedding_cache": cache}
    for split, items in sequences.items():
        keep = np.array([s is not None for s in items])
        if not keep.all():
            log.warning("%s: %d clip(s) with unreadable audio dropped", split, (~keep).sum())
            clips.drop(split, keep)
        sequences[split] = [s for s in items if s is not None]
    return sequences


def _minmax(sequences: dict[str, list[np.ndarray]], workdir: Path) -> dict[str, list[np.ndarray]]:
    """Scale every dimension to [0, 1] by its range over the training embeddings (Taenzer et al.);
    other splits are clipped to that range. The range is saved to scaling.npz."""
    train = np.concatenate(sequences["train"])
    low, high = train.min(0), train.max(0)
    span = np.where(high > low, high - low, 1.0)
    if processes.primary():
        partial = workdir / ".scaling.partial.npz"
        np.savez(partial, low=low, high=high)
        partial.replace(workdir / "scaling.npz")
    return {
        split: [np.clip((s - low) / span, 0.0, 1.0).astype(np.float32) for s in items]
        for split, items in sequences.items()
    }


def _load_encoder(config):
    """--encoder (a run or bundle brings its own front-end), else an untrained encoder with the
    config's encoder options and front-end — the random-initialisation baseline."""
    source = config.encoder.source
    if not source:
        source = f"random:{config.encoder.name}"
        log.warning(
            "no --encoder given: using an UNTRAINED %s (%s) — the random-initialisation baseline",
            config.encoder.name,
            source,
        )
    options = {k: v for k, v in config.encoder.items() if k not in ("name", "source")}
    loaded = load_encoder(source, seed=config.seed, options=options, frontend=config.frontend.to_dict())
    compute = config.get("compute", {})
    apply_compute(loaded.encoder, **compute)
    if compute.get("dtype", "float32") != "float32":  # other numbers: never mix them in one embedding cache
        loaded = dataclasses.replace(loaded, checksum=f"{loaded.checksum}-{compute['dtype']}")
    return loaded


def _check_trainable(config, loaded) -> None:
    """Mode `finetune` trains the encoder: refused, before anything is written, for one whose
    output passes no gradient."""
    if getattr(loaded.encoder, "postprocess", False) and config.optimizer.get("encoder_lr_scale", 1.0):
        raise BadValueError(
            NO_GRADIENT.format(
                where=f"mode 'finetune' on {loaded.source}",
                way="use mode 'frozen', or import the weights without --pca_params to fine-tune them",
            )
        )


def _finetune_setup(config, loaded, clips: ClipSet, bad_log: BadFileLog, info: dict):
    """Mode `finetune`: encoder + head on audio crops holding `window_patches` patches."""
    size = config.protocol.window_patches
    frontend = with_patch_hop(loaded.frontend, config.protocol.patch_hop_seconds)
    info |= {"encoder": loaded.source, "encoder_checksum": loaded.checksum}
    head = build_head(config.model, len(clips.classes), loaded.encoder.embedding_dim, rngs=nnx.Rngs(config.seed))
    model = EncoderWithHead(loaded.encoder, head, frontend, spec=config.spec_augment.to_dict())
    crop = frontend.samples_for_patches(size)
    effects = AudioEffects(dict(config.data.augment), frontend.sample_rate)

    def load(split: str):
        def load_row(row: int, rng) -> dict[str, np.ndarray]:
            wave, weight = load_crop(
                clips.paths[split][row], crop, bad_log, sample_rate=frontend.sample_rate, offset=None, rng=rng
            )
            if rng is not None and split == "train" and effects.active and weight:
                wave = effects(wave, rng).astype(np.float32)
            return _example(wave, clips, split, row, weight)

        return load_row

    def score(model: EncoderWithHead, split: str, size: int) -> np.ndarray:
        readable: list[bool] = []
        waves = decode_many(clips.paths[split], frontend.sample_rate, bad_log, readable, config.data.workers)
        sequences = list(embed_sequences(model.encoder, frontend, waves))
        keep = np.array(readable)
        if not keep.all():
            clips.drop(split, keep)
        predict = nnx.jit(lambda head, x: head(x))
        return protocol.averaged_scores(lambda x: predict(model.head, jnp.asarray(x)), sequences, size)

    return model, load, score
