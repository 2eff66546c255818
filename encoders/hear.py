"""The HEAR 2021 API (Turian et al.; hearbenchmark.com) over an encoder bundle.

    hear-validator encoders.hear --model runs/nsynth_mixup/export

`load_model(model_file_path)` takes a bundle folder (`python -m pretrain.export`).
`get_timestamp_embeddings` gives one embedding every `TIMESTAMP_HOP_SECONDS` (HEAR suggests
50 ms for event detection), timestamped at the centre of its patch in milliseconds;
`get_scene_embeddings` is the mean over the bundle's own patch hop. Audio arrives as
(n_sounds, n_samples) at `model.sample_rate`; results come back as the type that came in
(torch tensors for torch input, numpy arrays otherwise).
"""

from __future__ import annotations

import numpy as np

from encoders.bundle import EncoderBundle, load
from encoders.embedding import embed_sequences, with_patch_hop
from encoders.frontend import LogMel
from overtone.errors import BadValueError

TIMESTAMP_HOP_SECONDS = 0.05


class HearModel:
    def __init__(self, bundle: EncoderBundle):
        self.bundle = bundle
        self.sample_rate = bundle.sample_rate
        self.scene_embedding_size = self.timestamp_embedding_size = int(bundle.manifest["embedding_dim"])


def load_model(model_file_path: str = "") -> HearModel:
    if not model_file_path:
        raise BadValueError("model_file_path must be an Overtone encoder bundle folder (python -m pretrain.export)")
    return HearModel(load(model_file_path))


def _embed(audio, model: HearModel, hop_seconds: float | None) -> tuple[np.ndarray, LogMel]:
    waves = np.asarray(audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio, np.float32)
    if waves.ndim != 2:
        raise ValueError(f"audio must be (n_sounds, n_samples), got shape {waves.shape}")
    frontend = model.bundle.frontend
    frontend = with_patch_hop(frontend, hop_seconds) if hop_seconds else frontend
    return np.stack(list(embed_sequences(model.bundle.encoder, frontend, list(waves)))), frontend


def _like(array: np.ndarray, template):
    if type(template).__module__.startswith("torch"):
        import torch

        return torch.from_numpy(np.ascontiguousarray(array))
    return array


def get_timestamp_embeddings(audio, model: HearModel):
    embeddings, frontend = _embed(audio, model, TIMESTAMP_HOP_SECONDS)
    patch = frontend.samples_for_patches(1) / frontend.sample_rate
    centres = (np.arange(embeddings.shape[1]) * frontend.patch_seconds + patch / 2) * 1000.0
    timestamps = np.broadcast_to(centres, embeddings.shape[:2]).astype(np.float32)
    return _like(embeddings, audio), _like(timestamps, audio)


def get_scene_embeddings(audio, model: HearModel):
    embeddings, _ = _embed(audio, model, None)
    return _like(embeddings.mean(axis=1), audio)
