"""Front-ends and encoder networks: waveform → log-mel (on device) → embeddings.

`ENCODERS` is the one encoder registry. Every encoder maps a batch of log-mel patches
(B, frames, bands) to embeddings (B, D) and exposes `embedding_dim`; `encode_clips` turns a
batch of whole clips into a time sequence of embeddings (B, P, D), one per patch, which is
what the attention classifier consumes downstream.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from flax import nnx

from encoders.compact import CompactCNN
from encoders.frontend import FRONTENDS, LogMel, build_frontend
from encoders.logmel_stats import LogMelStats
from encoders.sinc import SincResNet
from encoders.vggish import VGGish
from encoders.zhong import ZhongSincNet
from overtone.errors import UnknownNameError, unknown_name

ENCODERS = {
    "vggish": VGGish,
    "compact": CompactCNN,
    "sinc": SincResNet,
    "sinc_zhong": ZhongSincNet,
    "logmel_stats": LogMelStats,
}

__all__ = [
    "ENCODERS",
    "FRONTENDS",
    "LogMel",
    "build_encoder",
    "check_encoder",
    "build_frontend",
    "encode_clips",
    "encode_patches",
    "load",
    "parameter_count",
]


def load(folder):
    """An exported encoder bundle (`python -m pretrain.export`) with `embed` / `embed_clip`."""
    from encoders.bundle import load as load_bundle  # late: bundle imports this package

    return load_bundle(folder)


def check_encoder(config) -> tuple[type, dict]:
    """(class, options) that `config.encoder` names, refusing an unknown name or option without
    building anything (cheap enough to call before any data is read)."""
    options = dict(config)
    name = options.pop("name")
    if name not in ENCODERS:
        raise unknown_name("encoder", name, ENCODERS)
    cls = ENCODERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "rngs"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UnknownNameError(f"encoder {name!r} has no option(s) {unknown}; valid: {sorted(accepted)}")
    return cls, {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def match_frontend(encoder: dict, frontend: dict) -> dict:
    """The encoder config completed for its front-end: a multi-channel front-end (multistft)
    sets `in_channels` of an encoder that takes channels and was given none, and the front-end's
    band count sets `bands` of one that takes it (logmel_stats)."""
    front = build_frontend(frontend)
    channels = getattr(front, "channels", 1)
    cls, _ = check_encoder(encoder)
    takes = inspect.signature(cls.__init__).parameters
    completed = dict(encoder)
    if channels > 1 and "in_channels" in takes and "in_channels" not in encoder:
        completed["in_channels"] = channels
    if "bands" in takes and "bands" not in encoder:
        completed["bands"] = front.num_bands
    return completed


def build_encoder(config, *, rngs: nnx.Rngs) -> nnx.Module:
    """Encoder from `config.encoder`: `name` plus that encoder's keyword options."""
    cls, options = check_encoder(config)
    return cls(**options, rngs=rngs)


def encode_patches(encoder: nnx.Module, patches: jax.Array) -> jax.Array:
    """(B, P, frames, bands) → (B, P, D): every patch through the encoder as one batch."""
    batch, count = patches.shape[:2]
    flat = jnp.reshape(patches, (batch * count, *patches.shape[2:]))
    return jnp.reshape(encoder(flat), (batch, count, -1))


def encode_clips(encoder: nnx.Module, frontend: LogMel, waveform: jax.Array) -> jax.Array:
    """(B, samples) 16 kHz waveform → (B, P, D), one embedding per `frontend.patch_seconds`."""
    return encode_patches(encoder, frontend.patches(frontend(waveform)))


def parameter_count(module: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))
