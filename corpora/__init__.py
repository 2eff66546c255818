"""Corpus readers and the input pipeline, shared by pretraining and fine-tuning.

`DATASETS` is the one dataset registry: name → function(data_config, bad_log=...) → Corpus.
"""

from corpora.notes import Corpus, NoteLoader, load_corpus

DATASETS = {"nsynth": load_corpus}


def get_dataset(name: str):
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}")
    return DATASETS[name]


__all__ = ["DATASETS", "Corpus", "NoteLoader", "get_dataset", "load_corpus"]
