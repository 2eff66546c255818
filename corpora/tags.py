"""Freesound tag processing for contrastive audio–tag alignment (COALA, Favory et al. 2020).

`normalise` lower-cases a tag and keeps its letters only ("Hi-Hat" → "hihat", "808" → "");
stop-words and empty results are dropped. `TagVocabulary.build` then folds plurals onto their
singular — only when the singular itself is a tag of the corpus, so "drums" → "drum" when
"drum" occurs, but "bass" or "glass" never lose their s — counts in how many training clips
each tag occurs, and keeps the `size` most frequent (ties alphabetical), optionally only among
tags in at least `no_below` clips and at most a fraction `no_above` of them (COALA's limits). It is built on the
training split only and saved with the run (JSON), so evaluation never shapes it.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

# English stop-words (function words that carry no sound description).
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)


def normalise(tag: str) -> str:
    """Lower-case letters only; '' for a tag that is a stop-word or has no letters."""
    letters = "".join(ch for ch in tag.lower() if ch.isalpha())
    return "" if letters in STOP_WORDS else letters


def singular_candidates(word: str) -> list[str]:
    """Possible singulars of an English plural, most specific rule first."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return []
    if word.endswith("ies") and len(word) > 4:
        return [word[:-3] + "y"]
    if word.endswith(("ches", "shes", "xes", "ses", "zes", "oes")):
        return [word[:-2], word[:-1]]
    return [word[:-1]]


def clean_tags(tags: Iterable[str]) -> list[str]:
    return sorted({t for t in map(normalise, tags) if t})


class TagVocabulary:
    def __init__(self, tags: Sequence[str], plurals: dict[str, str]):
        self.tags = list(tags)
        self.plurals = dict(plurals)  # plural → singular, learned on train
        self.index = {t: i for i, t in enumerate(self.tags)}

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def build(
        cls, clips_tags: Iterable[Iterable[str]], size: int, *, no_below: int = 1, no_above: float = 1.0
    ) -> TagVocabulary:
        """The `size` tags in most training clips, among those in at least `no_below` clips and at
        most `no_above` of them (COALA's scripts/preproc_tags.py: gensim's
        `filter_extremes(no_below=10, no_above=0.7, keep_n=1000)`, whose upper bound is
        int(no_above × clips))."""
        documents = [clean_tags(tags) for tags in clips_tags]
        present = {t for doc in documents for t in doc}
        plurals = {}
        for tag in present:
            singular = next((s for s in singular_candidates(tag) if s in present), None)
            if singular:
                plurals[tag] = singular
        counts = collections.Counter(t for doc in documents for t in {plurals.get(x, x) for x in doc})
        most = int(no_above * len(documents))
        kept = [t for t in counts if no_below <= counts[t] <= most]
        ranked = sorted(kept, key=lambda t: (-counts[t], t))[:size]
        return cls(ranked, plurals)

    def fold(self, tags: Iterable[str]) -> list[str]:
        return sorted({self.plurals.get(t, t) for t in clean_tags(tags)})

    def multi_hot(self, tags: Iterable[str]) -> np.ndarray:
        vector = np.zeros(len(self.tags), np.float32)
        for tag in self.fold(tags):
            if tag in self.index:
                vector[self.index[tag]] = 1.0
        return vector

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tags": self.tags, "plurals": self.plurals}, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> TagVocabulary:
        data = json.loads(Path(path).read_text())
        return cls(data["tags"], data["plurals"])
