"""IRMAS with a multi-resolution STFT CNN (a student pipeline this toolkit was designed from).

    python -m finetune --config=irmas_multistft --config.data.root=/data/IRMAS --workdir=runs/irmas_multistft

Three log-mel spectrograms of 256-, 512- and 1024-sample windows (16, 32, 64 ms) at one 10-ms
hop, stacked as channels (`frontend.name=multistft`), feed the compact CNN (`in_channels=3`)
and a linear output layer, trained end to end on 1-s slices of the training excerpts; the
test protocol is Zhong et al.'s (1-s windows every 0.5 s, averaged). The headline metric of
the original project is `top1_in_labels` — whether the highest-scoring instrument is among
an excerpt's labels — reported beside F1 and LRAP. For transfer, --encoder needs a run or
bundle trained with the same front-end (it brings its own).
"""

from ml_collections import ConfigDict

from configs import _common


def get_config(arg=None):
    del arg
    config = _common.irmas("finetune", batch_size=32)
    config.frontend = ConfigDict(
        dict(
            name="multistft",
            windows=(256, 512, 1024),
            window_length=1024,
            fft_length=1024,
            hop_length=160,
            num_bands=64,
            fmin=0.0,
            fmax=8000.0,
        )
    )
    config.encoder = dict(name="compact", source="", in_channels=3)
    config.protocol = dict(patch_hop_seconds=0.5, window_patches=1, scale="none")
    config.model = dict(name="linear", dropout=0.0)
    config.optimizer = dict(
        name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="constant", warmup_steps=0, encoder_lr_scale=1.0
    )
    config.spec_augment = dict(time_masks=1, time_width=10, freq_masks=1, freq_width=8)
    config.train.num_epochs = 30
    config.train.early_stopping_patience = 5
    return config
