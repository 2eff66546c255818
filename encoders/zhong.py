"""Zhong et al.'s instrument-embedding network, as their reference code builds it (`sinc_zhong`).

Sources: Zhong et al., APSIPA 2023; nii-yamagishilab/predominant-instrument-recognition —
`model_configs/irnet.py` (the configuration of their pretrained model), `src/models/
instr_emd_sinc_model.py` (sinc → batch-norm → ResNet → LDE), `src/models/mie/transforms.py`
(SincConv, adapted from SpeechBrain), `src/models/mie/backbones/resnet.py` (`resnet34`) and
`src/models/mie/necks.py` (`LDE`, network_type "lde", distance "sqr", mean pooling).

* SincConv: 128 filters of int(50 ms · 16 kHz) + 1 = 801 taps, stride int(12 ms · 16 kHz) = 192,
  "same" padding by reflection (400 samples each side), minimum cut-off and bandwidth 5 Hz,
  edges mel-spaced from 5 Hz to 8 kHz − 10 Hz; SpeechBrain's half-window Hamming taper
  (`zhong_window`). A 1-s (16,000-sample) input gives 84 frames × 128 filters.
* Batch-norm over that map as one channel ("spec_bn"), no compression.
* ResNet-34 ([3, 4, 6, 3] basic blocks at 16, 32, 64, 128 channels, strides 1, 2, 2, 2) behind
  a 7×7 stride-1 convolution + batch-norm + ReLU, no max-pool; PyTorch's padding and Kaiming
  normal (fan-out) initialisation.
* The average over the remaining 16 frequency rows (their AvgPool2d((1, 16))), then LDE with 8
  components, dictionary uniform in [−1, 1], precision w_c² (w_c initialised to 1) → 8 × 128 =
  1024-d embedding, which is what their fine-tuning classifier reads (`--csf mlp` drops the
  pretraining head's dense layer).

1,334,970 parameters. Their pretraining head (1024 → 512 dense, batch-norm, leaky ReLU, linear)
is `family_mixup`'s `hidden_dim=512` (configs/zhong_pretrain.py).

Deviation: PyTorch updates batch-norm's running variance with the unbiased batch variance, flax
with the biased one (a factor N/(N−1) with N ≥ 128 · 84 per channel in their setting).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from encoders.sinc import KAIMING_FAN_OUT, lde, mel_initial_bands, resnet_layers, sinc_kernels


def zhong_window(taps: int) -> np.ndarray:
    """SpeechBrain's SincConv taper, as their code computes it: the left half is
    0.54 − 0.46·cos(2π n / taps) at n = linspace(0, taps/2 − 1, taps // 2), the centre tap is
    untapered and the right half mirrors the left (close to, not equal to, np.hamming)."""
    half = 0.54 - 0.46 * np.cos(2 * np.pi * np.linspace(0, taps / 2 - 1, taps // 2) / taps)
    return np.concatenate([half, [1.0], half[::-1]])


class ZhongSincNet(nnx.Module):
    embedding_dim = 1024
    frontend_name = "waveform"  # the only front-end it takes: random:sinc_zhong gets it (encoders.pretrained)

    def __init__(
        self,
        *,
        filters: int = 128,
        window_ms: float = 50.0,
        stride_ms: float = 12.0,
        sample_rate: int = 16000,
        min_hz: float = 5.0,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        blocks: tuple[int, ...] = (3, 4, 6, 3),
        components: int = 8,
        rngs: nnx.Rngs,
    ):
        taps = int(window_ms / 1000 * sample_rate)
        self.taps = taps if taps % 2 else taps + 1
        self.stride = int(stride_ms / 1000 * sample_rate)
        self.sample_rate, self.min_hz = sample_rate, min_hz
        low, band = mel_initial_bands(filters, sample_rate, min_hz, min_hz, start_hz=min_hz)
        self.low_hz = nnx.Param(jnp.asarray(low, jnp.float32))
        self.band_hz = nnx.Param(jnp.asarray(band, jnp.float32))
        self.spec_norm = nnx.BatchNorm(1, momentum=0.9, rngs=rngs)
        self.stem = nnx.Conv(
            1, widths[0], (7, 7), padding=((3, 3), (3, 3)), use_bias=False, kernel_init=KAIMING_FAN_OUT, rngs=rngs
        )
        self.stem_norm = nnx.BatchNorm(widths[0], momentum=0.9, rngs=rngs)
        self.layers = resnet_layers(widths, blocks, rngs=rngs, torch_style=True)
        self.centres = nnx.Param(jax.random.uniform(rngs.params(), (components, widths[-1]), minval=-1.0, maxval=1.0))
        self.precision_root = nnx.Param(jnp.ones((components,)))
        self.embedding_dim = components * widths[-1]

    def kernels(self) -> jax.Array:
        return sinc_kernels(
            self.low_hz[...],
            self.band_hz[...],
            taps=self.taps,
            sample_rate=self.sample_rate,
            min_low=self.min_hz,
            min_band=self.min_hz,
            window=zhong_window(self.taps),
        )

    def filterbank(self, patches: jax.Array) -> jax.Array:
        """(N, samples, 1) → (N, frames, filters): the sinc layer with reflected "same" padding."""
        half = self.taps // 2
        padded = jnp.pad(patches, ((0, 0), (half, half), (0, 0)), mode="reflect")
        kernel = self.kernels()[:, None, :]  # (taps, in=1, filters)
        return jax.lax.conv_general_dilated(
            padded, kernel, (self.stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
        )

    def __call__(self, patches: jax.Array) -> jax.Array:
        """(N, samples, 1) waveform patches → (N, 1024)."""
        if patches.ndim != 3 or patches.shape[-1] != 1:
            raise ValueError(
                f"ZhongSincNet takes (batch, samples, 1) waveform patches (front-end 'waveform'); got {patches.shape}"
            )
        x = self.spec_norm(self.filterbank(patches)[..., None])  # (N, frames, filters, 1)
        x = jax.nn.relu(self.stem_norm(self.stem(x)))
        for layer in self.layers:
            x = layer(x)
        x = x.mean(axis=2)  # (N, frames', channels): the frequency rows averaged
        return lde(x, self.centres[...], self.precision_root[...] ** 2)
