"""VGGish (Hershey et al. 2017) in Flax NNX, layer for layer as `vggish_slim.py` (docs/methods.md §3).

conv3x3 64 → pool → conv 128 → pool → conv 256, conv 256 → pool → conv 512, conv 512 → pool
→ flatten (6×4×512 = 12288) → fc 4096 → fc 4096 → fc 128. SAME padding, ReLU after every
layer except the 128-d embedding (the TF original has none; torchvggish adds one — set
`final_relu=True` to match it). 72,141,184 parameters. Layer names follow the TF-slim
checkpoint (`conv3_1`, `fc1_2`, …) so AudioSet weights can be mapped onto them by name.
Activations are NHWC = (batch, time, mel, channels), the TF layout, so the flatten order of
the released weights is preserved.

`postprocess=True` appends the AudioSet release's post-processing (`vggish_postprocess.py`):
PCA with the released `vggish_pca_params.npz` (y = E·(x − μ)), clipping to [−2, 2] and 8-bit
quantisation, floor((y + 2)·255/4) — the form of OpenMIC's shipped features and Taenzer et
al.'s "PP" rows. The values stay float32 in [0, 255]; E and μ are constants, not parameters
(nothing trains them, and the floor passes no gradient): an option for imported weights
(`python -m encoders.import_vggish --pca_params=…`), not for training.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from encoders import compute

PATCH_SHAPE = (96, 64)
QUANTISE_RANGE = (-2.0, 2.0)  # vggish_params.QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL


# said when something would train through `postprocess`: its 8-bit rounding has zero gradient
# almost everywhere, so an encoder behind it would never learn
NO_GRADIENT = "{where}: AudioSet's post-processing (PCA + 8-bit quantisation) passes no gradient to the encoder; {way}"


class Constant(nnx.Variable):
    """A fixed array that travels with the weights (bundles, checkpoints) but is never trained."""


class VGGish(nnx.Module):
    embedding_dim = 128

    def __init__(self, *, final_relu: bool = False, postprocess: bool = False, rngs: nnx.Rngs):
        glorot = nnx.initializers.xavier_uniform()
        conv = functools.partial(nnx.Conv, kernel_size=(3, 3), padding="SAME", kernel_init=glorot, rngs=rngs)
        dense = functools.partial(nnx.Linear, kernel_init=glorot, rngs=rngs)
        self.final_relu = final_relu
        self.conv1 = conv(1, 64)
        self.conv2 = conv(64, 128)
        self.conv3_1 = conv(128, 256)
        self.conv3_2 = conv(256, 256)
        self.conv4_1 = conv(256, 512)
        self.conv4_2 = conv(512, 512)
        self.fc1_1 = dense(6 * 4 * 512, 4096)
        self.fc1_2 = dense(4096, 4096)
        self.fc2 = dense(4096, self.embedding_dim)
        self.postprocess = postprocess
        if postprocess:  # identity until the released values are set (encoders.import_vggish)
            self.pca_eigen_vectors = Constant(jnp.eye(self.embedding_dim, dtype=jnp.float32))
            self.pca_means = Constant(jnp.zeros(self.embedding_dim, jnp.float32))

    def __call__(self, patches: jax.Array) -> jax.Array:
        """(B, 96, 64) log-mel patches → (B, 128) embeddings."""
        if patches.shape[1:] != PATCH_SHAPE:
            raise ValueError(f"VGGish takes (batch, 96, 64) patches; got {patches.shape}")
        pool = compute.max_pool_2x2
        x = patches[..., None]
        x = pool(jax.nn.relu(self.conv1(x)))
        x = pool(jax.nn.relu(self.conv2(x)))
        x = pool(jax.nn.relu(self.conv3_2(jax.nn.relu(self.conv3_1(x)))))
        x = pool(jax.nn.relu(self.conv4_2(jax.nn.relu(self.conv4_1(x)))))
        x = jnp.reshape(x, (x.shape[0], -1))
        x = jax.nn.relu(self.fc1_1(x))
        x = jax.nn.relu(self.fc1_2(x))
        x = self.fc2(x)
        x = jax.nn.relu(x) if self.final_relu else x
        return self.quantise(x) if self.postprocess else x

    def quantise(self, x: jax.Array) -> jax.Array:
        """AudioSet's post-processing: PCA, clip, 8-bit (as float32 0…255)."""
        low, high = QUANTISE_RANGE
        y = (x - self.pca_means[...]) @ self.pca_eigen_vectors[...].T
        return jnp.floor((jnp.clip(y, low, high) - low) * (255.0 / (high - low)))
