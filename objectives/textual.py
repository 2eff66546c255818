"""Word-vector regression of NSynth note qualities (Taenzer et al.; docs/methods.md §4.3).

Target. A note's qualities (10 binary flags) become one 300-d vector: the mean of the unit-
normalised word vectors of its set qualities (each quality weighs the same whatever its
vector's norm). Notes with no quality set have no description to regress and are left out
of the loss (weight 0); their share is logged as `described_fraction`.

Centring (`centre`, off by default; the paper does not say). Word vectors of related
adjectives share a large common component: in the shipped table the ten quality words have a
mean pairwise cosine of 0.38 (bright–dark 0.67), and on the embedded corpus a *constant*
prediction reaches a mean cosine of 0.79 with the notes' targets. `centre=True` subtracts the
mean of the ten unit vectors (then normalises again), which drops that to 0.52. It was tried as
the default and measured with `python -m suite --config=objectives_table` (compact, 600 steps,
3 probe seeds): the family probe on unseen instruments fell from 0.454 ± 0.017 (vectors as they
are) to 0.416 ± 0.005, so the vectors stay as they are unless asked.

Head on the clip embedding (patch embeddings averaged): batch-norm → dense 300 + tanh →
dense 300 (linear).

Loss: cosine embedding loss with margin 0.5, PyTorch's `CosineEmbeddingLoss` semantics:
1 − cos(x, t) for a positive pair, max(0, cos(x, t) − margin) for a negative one, averaged
over pairs. Positive pairs: each prediction with its own target. Negative pairs (on by
default, `negatives=True`): each prediction with the target of the next note in the batch
(the batch rolled by one) whenever the two notes' quality sets differ — this is what keeps
the head from mapping everything to the average description. Taenzer et al. do not say how
they formed pairs; this choice is ours.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import encoders
from objectives.word_vectors import load_quality_vectors


def quality_targets(qualities: jax.Array, vectors: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, 10) flags, (10, D) vectors → (B, D) targets and (B,) 1.0 where a quality is set."""
    unit = vectors / jnp.linalg.norm(vectors, axis=-1, keepdims=True)
    counts = qualities.sum(-1)
    targets = qualities @ unit / jnp.maximum(counts, 1.0)[:, None]
    return targets, (counts > 0).astype(jnp.float32)


def cosine(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
    """PyTorch's cosine_similarity: x·y / max(‖x‖·‖y‖, eps)."""
    return (a * b).sum(-1) / jnp.maximum(jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1), eps)


def cosine_embedding_loss(x, t, y, margin: float, weights):
    """Weighted mean over pairs of PyTorch's CosineEmbeddingLoss (y = +1 or −1)."""
    sim = cosine(x, t)
    per_pair = jnp.where(y > 0, 1.0 - sim, jnp.maximum(0.0, sim - margin))
    return (per_pair * weights).sum() / jnp.maximum(weights.sum(), 1.0)


class Textual(nnx.Module):
    def __init__(
        self,
        embedding_dim: int,
        *,
        vectors_path: str = "",
        margin: float = 0.5,
        negatives: bool = True,
        centre: bool = False,
        rngs: nnx.Rngs,
    ):
        vectors = load_quality_vectors(vectors_path)
        if centre:  # remove what every quality word shares (module docstring: measured, not the default)
            unit = vectors / jnp.linalg.norm(vectors, axis=-1, keepdims=True)
            vectors = unit - unit.mean(axis=0)
        self.vectors = nnx.Variable(jnp.asarray(vectors))  # a constant, not a parameter
        dim = vectors.shape[1]
        self.margin, self.negatives = margin, negatives
        self.norm = nnx.BatchNorm(embedding_dim, momentum=0.9, rngs=rngs)
        glorot = nnx.initializers.xavier_uniform()
        self.hidden = nnx.Linear(embedding_dim, dim, kernel_init=glorot, rngs=rngs)
        self.out = nnx.Linear(dim, dim, kernel_init=glorot, rngs=rngs)

    def predict(self, encoder, frontend, audio: jax.Array) -> jax.Array:
        embedding = encoders.encode_clips(encoder, frontend, audio).mean(axis=1)
        return self.out(jnp.tanh(self.hidden(self.norm(embedding))))

    def __call__(self, encoder, frontend, batch: dict, key: jax.Array, *, train: bool):
        del key, train  # deterministic objective
        qualities = batch["qualities"]
        targets, described = quality_targets(qualities, self.vectors[...])
        weights = batch["weight"] * described
        predicted = self.predict(encoder, frontend, batch["audio"])
        positive = jnp.ones_like(weights)
        x, t, y, w = predicted, targets, positive, weights
        if self.negatives:
            differs = jnp.any(qualities != jnp.roll(qualities, 1, axis=0), axis=-1).astype(jnp.float32)
            negative_weights = weights * jnp.roll(weights, 1, axis=0) * differs
            x = jnp.concatenate([predicted, predicted])
            t = jnp.concatenate([targets, jnp.roll(targets, 1, axis=0)])
            y = jnp.concatenate([positive, -positive])
            w = jnp.concatenate([weights, negative_weights])
        loss = cosine_embedding_loss(x, t, y, self.margin, w)
        count = jnp.maximum(weights.sum(), 1.0)
        metrics = {
            "mean_cosine": (cosine(predicted, targets) * weights).sum() / count,
            "described_fraction": described.mean(),
        }
        return loss, metrics
