"""Zhong et al.'s IRMAS setting: fine-tune the pretrained encoder end to end on 1-s slices.

    python -m finetune --config=irmas_finetune --encoder=runs/nsynth_mixup \
        --config.data.root=/data/IRMAS --workdir=runs/irmas_finetune

Each step takes a random 0.975-s crop (one VGGish patch) of each 3-s training excerpt; the
encoder's embedding goes through a new dense output layer with sigmoids (`linear` head),
binary cross-entropy over the 11 instruments. The encoder learns at a tenth of the head's
rate (`optimizer.encoder_lr_scale`). At test, 1-s windows every 0.5 s, scores averaged
per excerpt; threshold chosen on validation, the test-optimised one reported only as a
labelled extra. Without --encoder the encoder starts untrained (their random-init row).
"""

from configs import _common


def get_config(arg=None):
    del arg
    config = _common.irmas("finetune", batch_size=32)
    config.protocol = dict(patch_hop_seconds=0.5, window_patches=1, scale="none")
    config.model = dict(name="linear", dropout=0.0)
    config.optimizer = dict(
        name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="constant", warmup_steps=0, encoder_lr_scale=0.1
    )
    config.train.num_epochs = 30
    config.train.early_stopping_patience = 5
    return config
