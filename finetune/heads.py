"""Classifier heads over embedding sequences (B, T, D) → class probabilities (B, C).

`HEADS` is the registry: `attention` (Gururani et al., below); `linear` — the
mean embedding over time through one dense layer with a sigmoid, a new output layer on a
pretrained encoder; and `mlp` — Zhong et al.'s fine-tuning head. With one 1-s window per example
(their setting) the mean over time is that window's embedding.

`AttentionClassifier`: the attention classifier of Gururani, Sharma & Lerch (ISMIR 2019;
docs/methods.md §5), in Flax NNX.

Layer for layer as AttentionMIC's `DecisionLevelSingleAttention`: the (B, T, 128) embedding
sequence is batch-normalised; three blocks of bias-free 1×1 convolution (a dense layer over
the feature axis) → batch-norm → ReLU → dropout 0.6 transform it; the *raw* input is added
back (the residual skips the first batch-norm, as in the reference); two dense layers with
sigmoids give per-frame attention `att` and per-frame class probabilities `cla`; the
attention, clamped to [1e-7, 1 − 1e-7] and normalised to sum 1 over time, weights `cla`, and
the clip probability is clipped to [0, 1]. 55,336 trainable parameters for 20 classes.

`masked_bce` is the loss of partial labels: binary cross-entropy averaged over the observed
(clip, class) entries only, so an unobserved label has no effect at all.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from flax import nnx

from overtone.errors import UnknownNameError, unknown_name

EPSILON = 1e-7


def he_uniform():
    """AttentionMIC's init: uniform with bound sqrt(6 / fan_in)."""
    return nnx.initializers.variance_scaling(2.0, "fan_in", "uniform")


class AttentionClassifier(nnx.Module):
    def __init__(
        self,
        num_classes: int,
        *,
        features: int = 128,
        hidden: int = 128,
        layers: int = 3,
        dropout: float = 0.6,
        rngs: nnx.Rngs,
    ):
        widths = [features] + [hidden] * layers
        self.input_norm = nnx.BatchNorm(features, momentum=0.9, rngs=rngs)
        self.dense = nnx.List(
            [
                nnx.Linear(widths[i], widths[i + 1], use_bias=False, kernel_init=he_uniform(), rngs=rngs)
                for i in range(layers)
            ]
        )
        self.norms = nnx.List([nnx.BatchNorm(hidden, momentum=0.9, rngs=rngs) for _ in range(layers)])
        self.dropout = nnx.Dropout(dropout)
        self.att = nnx.Linear(hidden, num_classes, kernel_init=he_uniform(), rngs=rngs)
        self.cla = nnx.Linear(hidden, num_classes, kernel_init=he_uniform(), rngs=rngs)

    def __call__(self, sequence: jax.Array, *, key: jax.Array | None = None, train: bool = False) -> jax.Array:
        """(B, T, features) → (B, classes) probabilities."""
        if sequence.shape[-1] != self.input_norm.num_features:
            raise ValueError(f"expected (batch, time, {self.input_norm.num_features}) embeddings, got {sequence.shape}")
        x = self.input_norm(sequence)
        for i, (dense, norm) in enumerate(zip(self.dense, self.norms, strict=True)):
            rngs = nnx.Rngs(dropout=jax.random.fold_in(key, i)) if train else None
            x = self.dropout(jax.nn.relu(norm(dense(x))), deterministic=not train, rngs=rngs)
        x = x + sequence
        return attention_pool(jax.nn.sigmoid(self.att(x)), jax.nn.sigmoid(self.cla(x)))


def attention_pool(att: jax.Array, cla: jax.Array) -> jax.Array:
    """(B, T, C) attention and class probabilities → (B, C): Σ_t (att / Σ att) · cla, in [0, 1]."""
    att = jnp.clip(att, EPSILON, 1.0 - EPSILON)
    weights = att / att.sum(axis=1, keepdims=True)
    return jnp.clip((weights * cla).sum(axis=1), 0.0, 1.0)


def masked_bce(probabilities: jax.Array, targets: jax.Array, observed: jax.Array) -> jax.Array:
    """Mean binary cross-entropy over observed entries (PyTorch BCELoss clamps log at −100)."""
    log_p = _clamped_log(probabilities, jnp.log)
    log_q = _clamped_log(-probabilities, jnp.log1p)
    losses = -(targets * log_p + (1.0 - targets) * log_q)
    observed = observed.astype(losses.dtype)
    return (losses * observed).sum() / jnp.maximum(observed.sum(), 1.0)


def _clamped_log(x: jax.Array, log) -> jax.Array:
    """max(log(x), −100) — or log1p — with a finite gradient where log is −inf (a saturated
    sigmoid gives p = 0 or 1 exactly in float32): there the clamp holds and the gradient is 0,
    where max(−inf, −100) alone would give 0 · inf = NaN."""
    zero = -1.0 if log is jnp.log1p else 0.0
    alive = x > zero
    return jnp.where(alive, jnp.maximum(log(jnp.where(alive, x, zero + 1.0)), -100.0), -100.0)


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
