"""Contrastive audio–tag alignment on Freesound (COALA, Favory et al. 2020).

    python -m pretrain --config=freesound_align --config.data.root=/data/FSD50K --workdir=runs/coala

Uploader tags (lower-cased, letters only, stop-words removed, plurals folded; the 1000 most
frequent in train, saved as tag_vocabulary.json in the work directory) become multi-hot
vectors; a tag encoder and the audio encoder are projected into one space and trained with
the contrastive loss (τ = 0.1) plus COALA's audio and tag reconstruction terms (weights 10,
5, 5). Data: FSD50K (data.root or $FSD50K_DIR) or a CSV manifest (data.manifest, columns
path,tags[,split]); with neither, an embedded tagged SoundFont set. Variant:
`encoder=vggish|compact`.
"""

from configs import _common


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
    config, _ = _common.nsynth_pretraining(arg, objective)
    config.data = _common.freesound_data()
    config.evaluator.probe = ""  # the family probe reads NSynth notes
    return config
