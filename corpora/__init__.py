"""The data layer: readers of the official datasets, the embedded SoundFont stand-ins
(`corpora.embedded`), and the input pipeline — shared by pretraining, fine-tuning and probes.

`DATASETS` is the one registry of every dataset, by name. A dataset comes in one or both of two
forms, each built from the config's `data` section:

- `corpus(data, bad_log=...) → Corpus` — training examples with every label a pretraining
  objective may want, loaded crop by crop (`corpora.corpus`); used by `pretrain`.
- `clips(data, seed) → ClipSet` — labelled clips with fixed splits (`corpora.clips`); used by
  `finetune` and its probes.

Every builder finds its root the same way (`corpora.corpus.find_root`) and crops audio the same way
(`overtone.audio.load_crop`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from corpora.clips import ClipSet, load_folder, load_irmas, load_nsynth, load_openmic
from corpora.corpus import Corpus
from corpora.freesound import load_freesound
from corpora.notes import NoteLoader, load_corpus
from overtone.errors import unknown_name


@dataclasses.dataclass(frozen=True)
class Dataset:
    corpus: Callable[..., Corpus] | None = None  # pretraining: (data, bad_log=) → Corpus
    clips: Callable[..., ClipSet] | None = None  # fine-tuning and probes: (data, seed) → ClipSet


DATASETS: dict[str, Dataset] = {
    "nsynth": Dataset(corpus=load_corpus),
    "freesound": Dataset(corpus=load_freesound),
    "openmic": Dataset(clips=load_openmic),
    "irmas": Dataset(clips=load_irmas),
    "folder": Dataset(clips=load_folder),  # your own class folders or CSV manifest
    "nsynth_family": Dataset(clips=functools.partial(load_nsynth, target="family")),
    "nsynth_pitch": Dataset(clips=functools.partial(load_nsynth, target="pitch")),
}
_USE = {"corpus": "pretraining dataset", "clips": "downstream dataset"}


def names(form: str) -> list[str]:
    """The datasets that come in `form` ("corpus" or "clips")."""
    return [name for name, dataset in DATASETS.items() if getattr(dataset, form)]


def get_dataset(name: str, form: str = "corpus", *, where: str = "config.data.dataset") -> Callable:
    """The builder of dataset `name` in `form`; an unknown name, or one that does not come in that
    form (IRMAS for pretraining), is an error listing those that do."""
    if name not in names(form):
        error = unknown_name(_USE[form], name, names(form), where=where)
        if name in DATASETS:  # known, in the other form only
            other = "fine-tuning and probes" if form == "corpus" else "pretraining"
            error.args = (f"{error.args[0]} ({name!r} is a dataset for {other})",)
        raise error
    return getattr(DATASETS[name], form)


__all__ = [
    "DATASETS",
    "ClipSet",
    "Corpus",
    "Dataset",
    "NoteLoader",
    "get_dataset",
    "load_corpus",
    "load_freesound",
    "names",
]
