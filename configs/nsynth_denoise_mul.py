"""Denoising autoencoder on NSynth with a multiplicative Bernoulli mask (Taenzer et al.):
each log-mel bin is kept with probability 0.5 and zeroed otherwise.

    python -m pretrain --config=nsynth_denoise_mul --workdir=runs/nsynth_denoise_mul

The log-mel patch is corrupted before the encoder; a transposed-convolution decoder
regresses the clean patch from the embedding (MSE). Variant: `encoder=vggish|compact`.
Noise parameters: --config.objective.noise_std, --config.objective.keep_prob.
"""

from configs import _common


def get_config(arg=None):
    objective = dict(name="denoise", noise="multiplicative", noise_std=0.1, keep_prob=0.5)
    config, _ = _common.nsynth_pretraining(arg, objective)
    return config
