"""Optimisers from `config.optimizer`, all optax."""

from __future__ import annotations

import jax
import optax

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(config, total_steps: int) -> optax.Schedule:
    peak, warmup = config.learning_rate, config.warmup_steps
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1), end_value=0.0)
    if config.schedule != "constant":
        raise ValueError(f"unknown optimizer.schedule {config.schedule!r}; valid: {SCHEDULES}")
    if warmup <= 0:
        return optax.constant_schedule(peak)
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])


def build_optimizer(config, total_steps: int) -> optax.GradientTransformation:
    """`adam` adds weight decay to the gradient (PyTorch's Adam(weight_decay=...), as Zhong et al.
    used); `adamw` decouples it (Loshchilov & Hutter). `encoder_lr_scale` (fine-tuning) multiplies
    the updates of the model's `encoder` subtree, i.e. gives the encoder a lower learning rate."""
    tx = _base_optimizer(config, total_steps)
    scale = config.get("encoder_lr_scale", 1.0)
    if scale == 1.0:
        return tx
    by_part = optax.multi_transform({"encoder": optax.scale(scale), "rest": optax.identity()}, _encoder_or_rest)
    return optax.chain(tx, by_part)


def _encoder_or_rest(params):
    def label(path, _):
        return "encoder" if getattr(path[0], "key", None) == "encoder" else "rest"

    return jax.tree_util.tree_map_with_path(label, params)


def _base_optimizer(config, total_steps: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(config, total_steps)
    decay = config.weight_decay
    if config.name == "adam":
        tx = optax.adam(schedule)
        return optax.chain(optax.add_decayed_weights(decay), tx) if decay else tx
    if config.name == "adamw":
        return optax.adamw(schedule, weight_decay=decay)
    if config.name == "sgd":
        tx = optax.sgd(schedule, momentum=config.get("momentum", 0.9))
        return optax.chain(optax.add_decayed_weights(decay), tx) if decay else tx
    raise ValueError(f"unknown optimizer.name {config.name!r}; valid: {OPTIMIZERS}")
