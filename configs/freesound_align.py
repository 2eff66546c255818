"""Contrastive audio–tag alignment on Freesound (COALA, Favory et al. 2020).

    python -m pretrain --config=freesound_align --config.data.root=/data/FSD50K --workdir=runs/coala

Uploader tags (lower-cased, letters only, stop-words removed, plurals folded; the 1000 most
frequent in train, saved as tag_vocabulary.json in the work directory) become multi-hot
vectors; a tag encoder and the audio encoder are projected into one space and trained with
the contrastive loss (τ = 0.1) plus COALA's audio and tag reconstruction terms (weights 10,
5, 5). Data: FSD50K (data.root or $FSD50K_DIR) or a CSV manifest (data.manifest, columns
path,tags[,split]); with neither, an embedded tagged SoundFont set.

Variants after a colon, comma-separated:
  encoder=vggish|compact   the network (default vggish)
  recipe=common|coala      common (default): the settings of the toolkit's other objectives
                           (Adam 1e-4, batch 64, at most 50 epochs, early stopping on the
                           validation loss), the 1000 most frequent tags;
                           coala: as COALA's code trains it, and as Taenzer et al. took it —
                           configs/dual_ae_c.json (plain SGD 5e-3, batch 128, 200 epochs, the
                           last epoch's encoder) and scripts/preproc_tags.py (the 1000 most
                           frequent tags among those in ≥ 10 clips and ≤ 70 % of them).
Deviations of `coala` from its sources: its separate optimisers for the audio and the tag
autoencoder are one here (the same plain SGD over all parameters, so the same updates); its
plural folding (inflect) is our rule above; tags of one letter are kept; its input is a
96-band mel spectrogram of its own, ours the encoder's front-end.
"""

from configs import _common
from overtone.errors import unknown_name


def get_config(arg=None):
    objective = dict(
        name="tag_align",
        temperature=0.1,
        projection_dim=1152,
        dropout=0.25,
        contrastive_weight=10.0,
        audio_reconstruction_weight=5.0,
        tag_reconstruction_weight=5.0,
    )
    config, variant = _common.nsynth_pretraining(arg, objective, recipe="common")
    config.data = _common.freesound_data()
    config.evaluator.probe = ""  # the family probe reads NSynth notes
    if variant["recipe"] == "coala":
        config.optimizer = dict(
            name="sgd", learning_rate=5e-3, momentum=0.0, weight_decay=0.0, schedule="constant", warmup_steps=0
        )
        config.train.batch_size = 128
        config.train.num_epochs = 200
        config.train.early_stopping_patience = 200  # never: all 200 epochs run
        config.train.select_by = "last"  # the encoder of the last epoch
        config.data.vocabulary_no_below, config.data.vocabulary_no_above = 10, 0.7
    elif variant["recipe"] != "common":
        raise unknown_name("recipe", variant["recipe"], ("common", "coala"), where="config variant")
    return config
