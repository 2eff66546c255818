"""A single-label CNN on your own class folders: piano / drums / flute / other, as in the student
project this toolkit was designed from (128-band mel spectrogram, 16 kHz, window 400, hop 200,
white-noise augmentation; precision / recall / F1 per class and a confusion matrix).

    python -m finetune --config=folder_4class_cnn --config.data.root=/data/my_instruments --workdir=runs/my4

data.root holds one sub-folder per class (any names, any number of classes), or set
data.manifest to a CSV of path,labels[,split]. Without either, an embedded 4-class SoundFont
folder is rendered. The compact CNN trains from scratch (or from --encoder=RUN_OR_BUNDLE,
which then brings its own front-end) on random 1.2-s crops with white noise at 10–40 dB SNR
half of the time; clips are scored by averaging windows every 0.5 s.
"""

from ml_collections import ConfigDict

from configs import _common


def get_config(arg=None):
    del arg
    config = _common.downstream("folder", "finetune", batch_size=16, embedded=dict(cache_dir="", clips=20))
    config.data.manifest = ""  # a CSV instead of class folders
    config.data.test_fraction = 0.2  # when neither layout gives splits
    config.data.augment.noise = 0.5
    config.frontend = ConfigDict(
        dict(
            name="logmel",
            sample_rate=16000,
            window_length=400,
            hop_length=200,
            fft_length=512,
            num_bands=128,
            fmin=0.0,
            fmax=8000.0,
        )
    )
    config.encoder = dict(name="compact", source="")
    config.protocol = dict(patch_hop_seconds=0.5, window_patches=1, scale="none")
    config.model = dict(name="linear", dropout=0.0)
    config.evaluation.threshold = "validation"
    config.optimizer = dict(
        name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="constant", warmup_steps=0, encoder_lr_scale=1.0
    )
    config.train.num_epochs = 30
    config.train.early_stopping_patience = 10
    return config
