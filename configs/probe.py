"""Linear-probe evaluation of a frozen encoder (`python -m finetune.probe`).

    python -m finetune.probe --encoder=runs/nsynth_mixup/export --task=nsynth_family --seeds=3
    python -m finetune.probe --encoder=random:vggish --task=irmas --config.data.irmas.root=/data/IRMAS

Tasks: nsynth_family, nsynth_pitch (official NSynth splits), irmas, openmic, folder (your own data). Mean patch
embedding per clip, standardised; softmax or masked per-class logistic regression; Adam
learning rate and L2 weight decay chosen on validation from `grid`. Each task's data section
is the one its downstream config uses; without a root, the embedded stand-ins.
"""

from ml_collections import ConfigDict

from configs import _common, folder_4class_cnn


def get_config(arg=None):
    del arg
    config = ConfigDict()
    config.seed = 0
    config.task = "nsynth_family"
    config.seeds = 3
    config.encoder = dict(name="vggish", source="")  # --encoder; empty → random:<name>
    config.embedding_cache = ""  # empty → $OVERTONE_CACHE/embeddings
    config.data = ConfigDict()
    config.data.nsynth = _common.nsynth_data()
    config.data.openmic = _common.downstream(
        "openmic", "frozen", batch_size=1, embedded=dict(cache_dir="", clips=240)
    ).data
    config.data.irmas = _common.irmas("frozen", batch_size=1).data
    config.data.folder = folder_4class_cnn.get_config().data  # your own class folders or manifest
    config.grid = dict(learning_rate=(1e-3, 1e-2), weight_decay=(0.0, 1e-4, 1e-3, 1e-2))
    config.epochs = 30
    config.batch_size = 1024
    return config
