"""Denoising autoencoder on NSynth with a multiplicative Bernoulli mask (Taenzer et al.):
each log-mel bin is kept with probability 0.5 and silenced (set to the log-mel floor) otherwise.

    python -m pretrain --config=nsynth_denoise_mul --workdir=runs/nsynth_denoise_mul

The log-mel patch is corrupted before the encoder; a transposed-convolution decoder
regresses the clean patch from the embedding (MSE). Variant: `encoder=vggish|compact`.
Noise parameters: --config.objective.noise_std, --config.objective.keep_prob.
"""

from configs import _common


def get_config(arg=None):
    return _common.nsynth_denoise(arg, noise="multiplicative")
