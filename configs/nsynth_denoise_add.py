"""Denoising autoencoder on NSynth with additive Gaussian noise (mean 0, std 0.1) (Taenzer et al.).

    python -m pretrain --config=nsynth_denoise_add --workdir=runs/nsynth_denoise_add

The log-mel patch is corrupted before the encoder; a transposed-convolution decoder
regresses the clean patch from the embedding (MSE). Variant: `encoder=vggish|compact`.
Noise parameters: --config.objective.noise_std, --config.objective.keep_prob.
"""

from configs import _common


def get_config(arg=None):
    return _common.nsynth_denoise(arg, noise="additive")
