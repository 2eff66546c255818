"""Instrument-family softmax with mixup on NSynth (Zhong et al. 2023's objective).

    python -m pretrain --config=nsynth_mixup --workdir=runs/nsynth_mixup

Variants after a colon, comma-separated:
  encoder=vggish|compact|sinc  the network (default vggish, as Taenzer et al.; sinc = Zhong
                           et al.'s waveform encoder, with the waveform front-end)
  frontend=NAME            a registered front-end with its defaults (logmel, multistft, cqt,
                           waveform; default vggish_logmel); multistft sets in_channels
  recipe=taenzer|zhong     taenzer (default): Adam 1e-4, batch 64, 11 family targets,
                           label smoothing 0.05, mixup p=0.5 Beta(0.4, 0.4);
                           zhong: Adam 1e-3 + weight decay 5e-4, cosine schedule with
                           warm-up, batch 128, and their augmentations: same-instrument
                           note concatenation and seven audio effects, each with
                           probability 0.3 (data.augment.*).
e.g. --config=nsynth_mixup:encoder=compact. Any key can be overridden, e.g.
--config.train.num_steps=200 --config.data.root=/data/nsynth.
"""

from configs import _common
from overtone.errors import unknown_name


def get_config(arg=None):
    objective = dict(name="family_mixup", target="family", label_smoothing=0.05, mixup_prob=0.5, mixup_alpha=0.4)
    config, variant = _common.nsynth_pretraining(arg, objective, recipe="taenzer")
    if variant["recipe"] == "zhong":
        config.train.batch_size = 128
        config.optimizer = dict(
            name="adam", learning_rate=1e-3, weight_decay=5e-4, schedule="cosine", warmup_steps=1000
        )
        zhong = ("concat_prob", "pitch_shift", "gain", "lowpass", "highpass", "delay", "reverb", "noise")
        config.data.augment = {name: 0.3 if name in zhong else 0.0 for name in config.data.augment}
        config.data.augment.chain_prob = 1.0
    elif variant["recipe"] != "taenzer":
        raise unknown_name("recipe", variant["recipe"], ("taenzer", "zhong"), where="config variant")
    return config
