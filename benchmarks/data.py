"""Host-side contenders: the input pipeline (from the audio files and from the PCM cache), the
on-device front-end against librosa, and the attention head's whole-epoch throughput."""

from __future__ import annotations

import math
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from benchmarks.timing import median_seconds


def input_pipeline(batch_size: int, workers: int, batches: int, *, cache: bool = False, augment: float = 0.0) -> float:
    """Clips/s through grain on the embedded corpus: decode + crop of 0.975-s training crops
    (the pretraining loader), from the WAV files or from a PCM cache built here first; with
    `augment` > 0, every augmentation of corpora.augment at that probability."""
    from configs._common import nsynth_data
    from corpora import load_corpus
    from corpora.pcm_cache import PcmCache, build
    from corpora.pipeline import training_batches
    from overtone.audio import BadFileLog
    from pretrain.train import corpus_paths

    bad = BadFileLog(0.01)
    data = ConfigDict(nsynth_data())
    data.augment = {name: augment for name in data.augment} | {"chain_prob": 1.0}  # every effect at `augment`
    corpus = load_corpus(data, bad_log=bad, splits=("train",))
    extra = {}
    if cache:
        folder = tempfile.mkdtemp(prefix="overtone-bench-pcm-")
        build(corpus_paths(corpus), folder, sample_rate=16000)
        extra["read"] = PcmCache(folder).load
    loader = corpus.make_loader(15600, 48000, bad, 16000, **extra)
    iterator = training_batches(
        corpus.splits["train"], loader, batch_size=batch_size, seed=0, workers=workers, prefetch=4
    )
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def vggish_reference_logmel(x: np.ndarray) -> np.ndarray:
    """VGGish's log-mel (mel_features.py's recipe) in float64 numpy, batched: periodic Hann
    frames of 400 with hop 160, |rfft(512)|, HTK-mel triangles 125–7500 Hz, log(+0.01)."""
    win, hop, nfft, bands, rate = 400, 160, 512, 64, 16000
    count = 1 + (x.shape[-1] - win) // hop
    index = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    magnitude = np.abs(np.fft.rfft(x[..., index].astype(np.float64) * window, n=nfft))
    mel = 1127.0 * np.log1p(np.linspace(0, rate / 2, nfft // 2 + 1) / 700.0)
    edges = np.linspace(1127.0 * math.log1p(125 / 700), 1127.0 * math.log1p(7500 / 700), bands + 2)
    lower = (mel[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - mel[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0] = 0.0
    return np.log(magnitude @ weights + 0.01)


def frontend_vs_librosa(clips: int, seconds: float, repeats: int) -> dict:
    """Clips/s per core of the on-device VGGish front-end (jitted, all cores) and of librosa's
    batched melspectrogram with the same parameters (numpy, one core), and the front-end's
    largest deviation from the float64 VGGish recipe."""
    import os

    import librosa

    from encoders.frontend import LogMel

    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, (clips, int(seconds * 16000))).astype(np.float32)
    device_audio = jnp.asarray(audio)
    rates, deviations = {}, {}
    for stft_dtype in ("float64", "float32"):  # float64 is the default: VGGish's numpy recipe to 1e-6
        ours = jax.jit(LogMel(stft_dtype=stft_dtype))
        seconds = median_seconds(lambda f=ours: f(device_audio).block_until_ready(), repeats, warmup=2)
        rates[stft_dtype] = clips / seconds / (os.cpu_count() or 1)
        reference = vggish_reference_logmel(audio[:8])
        deviations[stft_dtype] = float(np.max(np.abs(np.asarray(ours(device_audio[:8])) - reference)))

    def with_librosa():
        mel = librosa.feature.melspectrogram(
            y=audio,
            sr=16000,
            n_fft=512,
            win_length=400,
            hop_length=160,
            center=False,
            power=1.0,
            n_mels=64,
            fmin=125,
            fmax=7500,
            htk=True,
            norm=None,
        )
        return np.log(mel + 0.01)

    return {
        "frontend_clips_per_second_per_core": rates,  # stft_dtype → rate
        "librosa_clips_per_second_per_core": clips / median_seconds(with_librosa, repeats),
        "cores_used_by_jax": os.cpu_count() or 1,
        "max_abs_deviation_from_vggish_recipe": deviations,
    }


def attention_head(epochs: int) -> float:
    """Epochs/minute of `openmic_attention` on cached OpenMIC-sized features (13,424 training
    clips of 10 × 128): the real window loader and grain pipeline feeding the real jitted step."""
    from flax import nnx

    from configs.openmic_attention import get_config
    from corpora import ClipSet
    from corpora.pipeline import steps_per_epoch, training_batches
    from finetune.heads import AttentionClassifier, masked_bce
    from finetune.train import Head, window_loader
    from runtime import mesh as meshlib
    from runtime.loop import build_steps
    from runtime.optim import build_optimizer

    config = get_config()
    mesh = meshlib.data_mesh()
    rng = np.random.default_rng(0)
    count = 13424
    sequences = list(rng.random((count, 10, 128), np.float32))
    clips = ClipSet(
        name="bench",
        root=None,
        embedded=True,
        classes=[str(i) for i in range(20)],
        paths={},
        targets={"train": (rng.random((count, 20)) < 0.3).astype(np.float32)},
        observed={"train": rng.random((count, 20)) < 0.2},
    )
    model = Head(AttentionClassifier(20, rngs=nnx.Rngs(0)))

    def loss_fn(m, b, k, t):
        return masked_bce(m(b["x"], key=k, train=t), b["y"], b["observed"] * b["weight"][:, None]), {}

    steps = build_steps(model, loss_fn, build_optimizer(config.optimizer, 1000), mesh, seed=0)
    batches = training_batches(
        list(range(count)), window_loader(sequences, clips, "train", 10), batch_size=128, seed=0, workers=2, prefetch=4
    )
    state = steps.state

    def device_step(step):
        return jax.device_put(np.int32(step), meshlib.replicated(mesh))

    state, metrics = steps.train_step(state, meshlib.shard_batch(next(batches), mesh), device_step(0))
    jax.block_until_ready(metrics)  # compiled
    start = time.perf_counter()
    for step in range(epochs * steps_per_epoch(count, 128)):
        state, metrics = steps.train_step(state, meshlib.shard_batch(next(batches), mesh), device_step(step))
    jax.block_until_ready(metrics)
    return 60.0 * epochs / (time.perf_counter() - start)
