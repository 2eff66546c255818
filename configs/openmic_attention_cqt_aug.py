"""OpenMIC with a constant-Q input and augmentation (a student pipeline this toolkit was designed from:
scalogram input after Dutta et al. 2020, augmentation after Schlüter & Grill 2015).

    python -m finetune --config=openmic_attention_cqt_aug --config.data.root=/data/openmic-2018 --workdir=runs/cqt

The audio of each 10-s clip goes through a log constant-Q spectrogram (84 bins, C1–B7, 10-ms
hop; `frontend.name=cqt`), the compact CNN embeds ten 0.96-s patches, and Gururani et al.'s
attention head classifies the sequence with the masked binary cross-entropy of OpenMIC's
partial labels — all trained end to end. Training clips are augmented: pitch shift and time
stretch, random low/high-pass filtering, loudness changes (p = 0.3 each), and mixing of two
clips with the union of their labels (p = 0.5). Threshold 0.5 as in the OpenMIC papers.
"""

from ml_collections import ConfigDict

from configs import openmic_attention


def get_config(arg=None):
    config = openmic_attention.get_config(arg)
    config.mode = "finetune"
    config.frontend = ConfigDict(dict(name="cqt", fmin=32.703, num_bands=84, bins_per_octave=12, hop_length=160))
    config.encoder = dict(name="compact", source="")
    config.protocol = dict(patch_hop_seconds=0.96, window_patches=10, scale="none")
    for effect in ("pitch_shift", "time_stretch", "lowpass", "highpass", "gain"):
        config.data.augment[effect] = 0.3
    config.mix = dict(prob=0.5, alpha=0.4, labels="union")
    config.train.batch_size = 32
    config.train.num_epochs = 100
    config.train.early_stopping_patience = 15
    config.train.select_by = "loss"  # end to end, the validation audio is not re-scored every epoch
    return config
