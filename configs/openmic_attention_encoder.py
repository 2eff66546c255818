"""The OpenMIC attention classifier on embeddings of *our* encoder (Taenzer et al.'s evaluation).

    python -m finetune --config=openmic_attention_encoder --encoder=runs/nsynth_mixup \
        --config.data.root=/data/openmic-2018 --workdir=runs/openmic_mixup

The frozen encoder (a pretraining work directory, or random:vggish for the untrained
baseline) embeds every 10-s clip from `audio/` once — ten 0.96-s patches, as OpenMIC's own
features — into the embedding cache; each dimension is scaled to [0, 1] by its range on the
training clips (Taenzer et al.), and the head trains as in `openmic_attention` — including the
epoch chosen by validation per-instrument F1, as Taenzer et al. choose theirs.
"""

from configs import openmic_attention


def get_config(arg=None):
    config = openmic_attention.get_config(arg)
    config.mode = "frozen"
    config.protocol.scale = "minmax"
    return config
