"""Instrument-family softmax with mixup (Zhong et al., APSIPA 2023; docs/methods.md §4.1).

The encoder embeds every 0.96-s patch of the clip; patch embeddings are averaged and a linear
layer gives logits over the 11 NSynth families (or over instruments with
`target='instrument'`). Training loss is softmax cross-entropy against label-smoothed
one-hot targets. With `hidden_dim` > 0 the head is Zhong et al.'s instead (their
`instr_emd_sinc_model.py` fc0 + bn0 and `heads.py` LinearClsHead): dense to `hidden_dim`,
batch-norm, leaky ReLU (slope 0.01), dense to the classes, the last layer initialised as their
`init_weights` does it — weights N(1, 0.01²), bias 0.

Mixup, as in Zhong et al.'s code: with probability `mixup_prob` per batch, draw
λ ~ Beta(α, α), pair every example with its neighbour (the batch rolled by one), mix the
*waveforms* (a sum of two sounds, before the log front-end) and the targets with λ. The loss
on the mixed target equals λ·CE(a) + (1−λ)·CE(b) exactly, because cross-entropy is linear
in the target. Mixing runs on device inside the jitted step, keyed by the step's RNG, so it
is deterministic and resumes exactly.

Evaluation uses no mixup and no label smoothing: the plain cross-entropy of the true label
(the early-stopping criterion) and top-1 accuracy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import encoders
from encoders.augment import mixup
from overtone.errors import BadValueError

TARGETS = ("family", "instrument")


def smooth(one_hot: jax.Array, amount: float) -> jax.Array:
    return one_hot * (1.0 - amount) + amount / one_hot.shape[-1]


class FamilyMixup(nnx.Module):
    def __init__(
        self,
        embedding_dim: int,
        *,
        num_classes: int,
        target: str = "family",
        label_smoothing: float = 0.05,
        mixup_prob: float = 0.5,
        mixup_alpha: float = 0.4,
        hidden_dim: int = 0,
        rngs: nnx.Rngs,
    ):
        if target not in TARGETS:
            raise BadValueError(f"family_mixup target must be one of {TARGETS}, got {target!r}")
        if not 0.0 <= mixup_prob <= 1.0 or mixup_alpha <= 0 or not 0.0 <= label_smoothing < 1.0:
            raise BadValueError("need 0 <= mixup_prob <= 1, mixup_alpha > 0, 0 <= label_smoothing < 1")
        self.target = target
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mixup_prob = mixup_prob
        self.mixup_alpha = mixup_alpha
        if hidden_dim < 0:
            raise BadValueError(f"family_mixup hidden_dim must be 0 (a linear head) or positive, got {hidden_dim}")
        self.hidden_dim = hidden_dim
        if hidden_dim:
            # PyTorch's nn.Linear default: U(±1/√fan_in) for weights and bias
            bound = embedding_dim**-0.5
            uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)  # noqa: E731
            self.hidden = nnx.Linear(embedding_dim, hidden_dim, kernel_init=uniform, bias_init=uniform, rngs=rngs)
            self.hidden_norm = nnx.BatchNorm(hidden_dim, momentum=0.9, rngs=rngs)
            ones_ish = lambda key, shape, dtype=jnp.float32: 1.0 + 0.01 * jax.random.normal(key, shape, dtype)  # noqa: E731
            self.classifier = nnx.Linear(hidden_dim, num_classes, kernel_init=ones_ish, rngs=rngs)
        else:
            self.classifier = nnx.Linear(
                embedding_dim, num_classes, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs
            )

    def logits(self, encoder, frontend, audio: jax.Array) -> jax.Array:
        pooled = encoders.encode_clips(encoder, frontend, audio).mean(axis=1)  # (B, P, D) → (B, D)
        if self.hidden_dim:
            pooled = jax.nn.leaky_relu(self.hidden_norm(self.hidden(pooled)), negative_slope=0.01)
        return self.classifier(pooled)

    def __call__(self, encoder, frontend, batch: dict, key: jax.Array, *, train: bool):
        labels = batch[self.target]
        weights = batch["weight"]
        one_hot = jax.nn.one_hot(labels, self.num_classes)
        audio = batch["audio"]
        if train:
            targets = smooth(one_hot, self.label_smoothing)
            audio, targets, weights, lam = mixup(
                key, audio, targets, weights, prob=self.mixup_prob, alpha=self.mixup_alpha
            )
        else:
            targets = one_hot
        logits = self.logits(encoder, frontend, audio)
        losses = optax.softmax_cross_entropy(logits, targets)
        count = jnp.maximum(weights.sum(), 1.0)
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
        metrics = {"accuracy": (correct * batch["weight"]).sum() / jnp.maximum(batch["weight"].sum(), 1.0)}
        if train:
            metrics["mixup_lambda"] = lam
        return (losses * weights).sum() / count, metrics
