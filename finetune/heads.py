"""Classifier heads over embedding sequences (B, T, D) → class probabilities (B, C).

`HEADS` is the registry: `attention` (Gururani et al., `finetune.attention`) and `linear` — the
mean embedding over time through one dense layer with a sigmoid, the new output layer that
fine-tuning puts on a pretrained encoder (Zhong et al.'s setting; with one 1-s window per
example the mean is that window's embedding).
"""

from __future__ import annotations

import inspect

import jax
from flax import nnx

from finetune.attention import AttentionClassifier
from overtone.errors import UnknownNameError, unknown_name


class LinearHead(nnx.Module):
    def __init__(self, num_classes: int, *, features: int = 128, dropout: float = 0.0, rngs: nnx.Rngs):
        self.dense = nnx.Linear(features, num_classes, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, sequence: jax.Array, *, key: jax.Array | None = None, train: bool = False) -> jax.Array:
        pooled = sequence.mean(axis=1)
        pooled = self.dropout(pooled, deterministic=not train, rngs=nnx.Rngs(dropout=key) if train else None)
        return jax.nn.sigmoid(self.dense(pooled))


HEADS = {"attention": AttentionClassifier, "linear": LinearHead}


def check_head(config) -> tuple[str, dict]:
    """(name, options) of `config.model`, refusing an unknown head or option."""
    options = dict(config)
    name = options.pop("name")
    if name not in HEADS:
        raise unknown_name("head", name, HEADS, where="model.name")
    accepted = set(inspect.signature(HEADS[name].__init__).parameters) - {"self", "rngs", "num_classes", "features"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UnknownNameError(f"head {name!r} has no option(s) {unknown}; valid: {sorted(accepted)}")
    return name, options


def build_head(config, num_classes: int, features: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Head from `config.model`: `name` plus that head's keyword options."""
    name, options = check_head(config)
    return HEADS[name](num_classes, features=features, **options, rngs=rngs)
