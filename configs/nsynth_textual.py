"""Word-vector regression of NSynth note qualities (Taenzer et al.'s "textual description").

    python -m pretrain --config=nsynth_textual --workdir=runs/nsynth_textual

Each note's qualities become the mean of their 300-d word vectors (spaCy en_core_web_md,
shipped in objectives/data/); the encoder + head regress it with a cosine embedding loss,
margin 0.5, with negative pairs from the next note in the batch. Notes without qualities do
not count. `--config.objective.centre=True` centres the quality vectors (objectives/textual.py).
Use your own vectors with --config.objective.vectors_path=/path/to/glove.txt
(word2vec text or binary, or GloVe). Variant: `encoder=vggish|compact`.
"""

from configs import _common


def get_config(arg=None):
    objective = dict(name="textual", vectors_path="", margin=0.5, negatives=True, centre=False)
    config, _ = _common.nsynth_pretraining(arg, objective)
    return config
