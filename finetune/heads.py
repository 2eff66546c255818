"""Classifier heads over embedding sequences (B, T, D) → class probabilities (B, C).

`HEADS` is the registry: `attention` (Gururani et al., `finetune.attention`); `linear` — the
mean embedding over time through one dense layer with a sigmoid, a new output layer on a
pretrained encoder; and `mlp` — Zhong et al.'s fine-tuning head. With one 1-s window per example
(their setting) the mean over time is that window's embedding.
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


def torch_linear_init():
    """PyTorch's nn.Linear default, U(±1/√fan_in) for the kernel (kaiming_uniform with a=√5)."""
    return nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class MLPHead(nnx.Module):
    """Zhong et al.'s head (`--csf mlp` in their src/lms/irmas_mie.py): the embedding →
    ReLU → batch-norm → dropout 0.15 → dense → sigmoid, initialised as PyTorch initialises it
    (kernel and bias U(±1/√fan_in); batch-norm momentum 0.1 in PyTorch's sense, ε 1e-5)."""

    def __init__(self, num_classes: int, *, features: int = 128, dropout: float = 0.15, rngs: nnx.Rngs):
        bound = features**-0.5
        self.norm = nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.dense = nnx.Linear(
            features,
            num_classes,
            kernel_init=torch_linear_init(),
            bias_init=lambda key, shape, dtype: jax.random.uniform(key, shape, dtype, -bound, bound),
            rngs=rngs,
        )

    def __call__(self, sequence: jax.Array, *, key: jax.Array | None = None, train: bool = False) -> jax.Array:
        x = self.norm(jax.nn.relu(sequence.mean(axis=1)))
        x = self.dropout(x, deterministic=not train, rngs=nnx.Rngs(dropout=key) if train else None)
        return jax.nn.sigmoid(self.dense(x))


HEADS = {"attention": AttentionClassifier, "linear": LinearHead, "mlp": MLPHead}


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
