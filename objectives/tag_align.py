"""Contrastive audio–tag alignment, after COALA (Favory, Drossos, Virtanen, Serra 2020; docs/methods.md §4.4).

Tag side: the multi-hot tag vector → three blocks of dense → batch-norm → ReLU → dropout 0.25
(widths 512, 512, 1152) → a bias-free linear projection. Audio side: the clip embedding (patch
embeddings averaged) → an affine projection to the same size.

Contrastive loss over the 2N projections of a batch (N audio, N tag): cosine similarities
s_ij, scaled by 1/τ (τ = 0.1), the diagonal removed; for each of the 2N rows the positive is
its partner from the other modality, and the loss is −mean log(exp(s_pos/τ) / Σ_{j≠i}
exp(s_ij/τ)). It is computed as a log-softmax with the diagonal masked to −∞, so small τ
never overflows. Rows whose clip failed to load (weight 0) are masked out as anchors and as
candidates.

COALA's reconstruction terms are optional, each with its weight (0 turns it off): audio —
the denoising module's transposed-convolution decoder rebuilds the clean log-mel patches from
the patch embeddings (MSE); tags — a dense decoder (1152 → 512 → vocabulary) rebuilds the
multi-hot vector from the tag encoding (binary cross-entropy). COALA weighs them 5, 5 against
10 for the contrastive term.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import encoders
from objectives.denoise import TimeDecoder, match_frames
from overtone.errors import BadValueError

TAG_WIDTHS = (512, 512, 1152)


def contrastive_loss(audio: jax.Array, tags: jax.Array, weights: jax.Array, temperature: float):
    """Per-row losses averaged over valid rows; plus audio→tag top-1 retrieval accuracy."""
    n = audio.shape[0]
    z = jnp.concatenate([audio, tags])
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-8)
    logits = (z @ z.T) / temperature
    valid = jnp.concatenate([weights, weights]) > 0
    candidates = valid[None, :] & ~jnp.eye(2 * n, dtype=bool)
    log_prob = jax.nn.log_softmax(jnp.where(candidates, logits, -jnp.inf), axis=-1)
    partner = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
    per_row = -jnp.take_along_axis(log_prob, partner[:, None], axis=-1)[:, 0]
    row_weights = jnp.concatenate([weights, weights])
    loss = jnp.where(valid, per_row, 0.0).sum() / jnp.maximum(row_weights.sum(), 1.0)
    cross = jnp.where(valid[None, n:], logits[:n, n:], -jnp.inf)
    hits = (jnp.argmax(cross, axis=-1) == jnp.arange(n)).astype(jnp.float32)
    accuracy = (hits * weights).sum() / jnp.maximum(weights.sum(), 1.0)
    return loss, accuracy


class TagEncoder(nnx.Module):
    def __init__(self, vocabulary: int, *, dropout: float, rngs: nnx.Rngs):
        widths = (vocabulary, *TAG_WIDTHS)
        glorot = nnx.initializers.xavier_uniform()
        self.dense = nnx.List([nnx.Linear(widths[i], widths[i + 1], kernel_init=glorot, rngs=rngs) for i in range(3)])
        self.norms = nnx.List([nnx.BatchNorm(w, momentum=0.9, rngs=rngs) for w in TAG_WIDTHS])
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, tags: jax.Array, key: jax.Array, *, train: bool) -> jax.Array:
        x = tags
        for i, (dense, norm) in enumerate(zip(self.dense, self.norms, strict=True)):
            rngs = nnx.Rngs(dropout=jax.random.fold_in(key, i))
            x = self.dropout(jax.nn.relu(norm(dense(x))), deterministic=not train, rngs=rngs)
        return x


class TagAlign(nnx.Module):
    def __init__(
        self,
        embedding_dim: int,
        *,
        vocabulary: int,
        num_bands: int,
        temperature: float = 0.1,
        projection_dim: int = 1152,
        dropout: float = 0.25,
        contrastive_weight: float = 10.0,
        audio_reconstruction_weight: float = 5.0,
        tag_reconstruction_weight: float = 5.0,
        rngs: nnx.Rngs,
    ):
        if temperature <= 0:
            raise BadValueError(f"temperature must be positive, got {temperature}")
        glorot = nnx.initializers.xavier_uniform()
        self.temperature = temperature
        self.weights = (contrastive_weight, audio_reconstruction_weight, tag_reconstruction_weight)
        self.tag_encoder = TagEncoder(vocabulary, dropout=dropout, rngs=rngs)
        self.tag_projection = nnx.Linear(TAG_WIDTHS[-1], projection_dim, use_bias=False, kernel_init=glorot, rngs=rngs)
        self.audio_projection = nnx.Linear(embedding_dim, projection_dim, kernel_init=glorot, rngs=rngs)
        self.audio_decoder = TimeDecoder(embedding_dim, num_bands, rngs=rngs) if audio_reconstruction_weight else None
        self.tag_decoder = (
            nnx.Sequential(
                nnx.Linear(TAG_WIDTHS[-1], 512, kernel_init=glorot, rngs=rngs),
                jax.nn.relu,
                nnx.Linear(512, vocabulary, kernel_init=glorot, rngs=rngs),
            )
            if tag_reconstruction_weight
            else None
        )

    def __call__(self, encoder, frontend, batch: dict, key: jax.Array, *, train: bool):
        weights = batch["weight"]
        count = jnp.maximum(weights.sum(), 1.0)
        patches = frontend.patches(frontend(batch["audio"]))
        embeddings = encoders.encode_patches(encoder, patches)  # (B, P, D)
        tag_code = self.tag_encoder(batch["tags"], key, train=train)
        contrastive, accuracy = contrastive_loss(
            self.audio_projection(embeddings.mean(axis=1)), self.tag_projection(tag_code), weights, self.temperature
        )
        metrics = {"contrastive": contrastive, "audio_to_tag_top1": accuracy}
        loss = self.weights[0] * contrastive
        if self.audio_decoder is not None:
            b, p, frames, bands = patches.shape
            decoded = match_frames(self.audio_decoder(embeddings.reshape(b * p, -1)), frames).reshape(patches.shape)
            mse = (jnp.mean((decoded - patches) ** 2, axis=(1, 2, 3)) * weights).sum() / count
            metrics["audio_reconstruction"] = mse
            loss = loss + self.weights[1] * mse
        if self.tag_decoder is not None:
            bce = optax.sigmoid_binary_cross_entropy(self.tag_decoder(tag_code), batch["tags"]).mean(-1)
            metrics["tag_reconstruction"] = (bce * weights).sum() / count
            loss = loss + self.weights[2] * metrics["tag_reconstruction"]
        return loss, metrics
