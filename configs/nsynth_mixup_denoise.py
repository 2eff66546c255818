"""One encoder, two objectives: family softmax with mixup + additive-noise denoising.

    python -m pretrain --config=nsynth_mixup_denoise --workdir=runs/nsynth_mixup_denoise

The loss is 1.0 · cross-entropy + 1.0 · reconstruction MSE (log-mel units); each part is
logged on its own (`mixup/loss`, `denoise/mse`). Change the weights with
--config.objective.parts.denoise.weight=… . Variant: `encoder=vggish|compact`.
"""

from configs import _common


def get_config(arg=None):
    objective = dict(
        name="multi",
        parts=dict(
            mixup=dict(name="family_mixup", weight=1.0, label_smoothing=0.05, mixup_prob=0.5, mixup_alpha=0.4),
            denoise=dict(name="denoise", weight=1.0, noise="additive", noise_std=0.1),
        ),
    )
    config, _ = _common.nsynth_pretraining(arg, objective)
    return config
