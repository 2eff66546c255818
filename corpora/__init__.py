"""Corpus readers and the input pipeline, shared by pretraining and fine-tuning.

`DATASETS` is the one dataset registry: name → function(data_config, bad_log=...) → Corpus.
"""

from corpora.corpus import Corpus
from corpora.freesound import load_freesound
from corpora.notes import NoteLoader, load_corpus
from overtone.errors import unknown_name

DATASETS = {"nsynth": load_corpus, "freesound": load_freesound}


def get_dataset(name: str):
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


__all__ = ["DATASETS", "Corpus", "NoteLoader", "get_dataset", "load_corpus", "load_freesound"]
