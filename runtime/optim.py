"""Optimisers from `config.optimizer`, all optax."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import optax
from flax import nnx
from flax.nnx.filterlib import Filter

from overtone.errors import BadValueError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


def check_optimizer(config) -> None:
    """`config.optimizer`'s names and warm-up, checked before a work directory is written (the
    schedule itself needs the data's size)."""
    if config.name not in OPTIMIZERS:
        raise BadValueError(f"unknown optimizer.name {config.name!r}; valid: {OPTIMIZERS}")
    learning_rate_schedule(config, total_steps=1, steps_per_epoch=1)


def learning_rate_schedule(config, total_steps: int, steps_per_epoch: int = 0) -> optax.Schedule:
    """Linear warm-up from 0 over `warmup_steps` (or `warmup_epochs` × `steps_per_epoch`), then
    constant, or a cosine decay to 0 at `total_steps`."""
    peak, warmup = config.learning_rate, config.warmup_steps
    if config.get("warmup_epochs", 0):
        if warmup:
            raise BadValueError("optimizer.warmup_steps and optimizer.warmup_epochs are both set: give one")
        warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1), end_value=0.0)
    if config.schedule != "constant":
        raise BadValueError(f"unknown optimizer.schedule {config.schedule!r}; valid: {SCHEDULES}")
    if warmup <= 0:
        return optax.constant_schedule(peak)
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])


def build_optimizer(
    config, total_steps: int, lr_scales: Sequence[tuple[Filter, float]] = (), *, steps_per_epoch: int = 0
) -> optax.GradientTransformation:
    """`adam` adds weight decay to the gradient (PyTorch's Adam(weight_decay=...), as Zhong et al.
    used); `adamw` decouples it (Loshchilov & Hutter).

    `lr_scales` gives parameter groups a rate of their own: (an nnx filter over the model's
    parameter paths, a factor) pairs, declared by the stage that owns the model (fine-tuning
    declares its encoder, `finetune.train.ENCODER_PARAMS`). A parameter takes the factor of
    the first filter it matches; updates of the others are unchanged."""
    tx = _base_optimizer(config, total_steps, steps_per_epoch)
    groups = [(nnx.filterlib.to_predicate(where), factor) for where, factor in lr_scales if factor != 1.0]
    if not groups:
        return tx

    def labels(params):
        def label(path, value):
            keys = tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
            return next((str(i) for i, (matches, _) in enumerate(groups) if matches(keys, value)), "rest")

        return jax.tree_util.tree_map_with_path(label, params)

    by_group = {str(i): optax.scale(factor) for i, (_, factor) in enumerate(groups)} | {"rest": optax.identity()}
    return optax.chain(tx, optax.multi_transform(by_group, labels))


def _base_optimizer(config, total_steps: int, steps_per_epoch: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(config, total_steps, steps_per_epoch)
    decay = config.weight_decay
    if config.name == "adam":
        tx = optax.adam(schedule)
        return optax.chain(optax.add_decayed_weights(decay), tx) if decay else tx
    if config.name == "adamw":
        return optax.adamw(schedule, weight_decay=decay)
    if config.name == "sgd":
        tx = optax.sgd(schedule, momentum=config.get("momentum", 0.9) or None)  # 0: plain SGD, no trace
        return optax.chain(optax.add_decayed_weights(decay), tx) if decay else tx
    raise BadValueError(f"unknown optimizer.name {config.name!r}; valid: {OPTIMIZERS}")
