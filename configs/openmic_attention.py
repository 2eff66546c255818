"""Gururani et al.'s attention classifier on OpenMIC-2018's shipped VGGish features.

    python -m finetune --config=openmic_attention --config.data.root=/data/openmic-2018 --workdir=runs/openmic

No audio and no encoder: the (10, 128) features of each clip, scaled to [0, 1], feed the
classifier; the loss is binary cross-entropy over observed labels only. Adam 5e-4 with weight
decay 1e-5, batch 128, 300 epochs, keeping the epoch with the best validation loss
(validation: 10 % of split01_train, fixed seed). The report gives the OpenMIC
per-instrument F1 that the papers report (AttentionMIC: 0.797) beside multi-label F1, LRAP
and mAP, at threshold 0.5. Data from data.root or $OPENMIC_DIR; with neither, an embedded
stand-in.
"""

from configs import _common


def get_config(arg=None):
    del arg
    config = _common.downstream("openmic", "features", batch_size=128, embedded=dict(cache_dir="", clips=240))
    config.optimizer = dict(name="adam", learning_rate=5e-4, weight_decay=1e-5, schedule="constant", warmup_steps=0)
    config.train.num_epochs = 300
    config.train.early_stopping_patience = 300  # keep the best epoch; do not stop early
    config.train.log_every_steps = 20
    return config
