"""Tag processing: normalisation, plural folding, train-only top-K vocabulary."""

import numpy as np
import pytest

from corpora.tags import TagVocabulary, clean_tags, normalise, singular_candidates


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Piano", "piano"),
        ("hi-hat", "hihat"),
        ("808", ""),
        ("the", ""),
        ("  Guitar! ", "guitar"),
        ("field_recording", "fieldrecording"),
        ("ÉCHO", "écho"),
        ("tr-808", "tr"),
        ("A", ""),
    ],
)
def test_normalise_tricky_tags(raw, clean):
    assert normalise(raw) == clean


def test_clean_tags_deduplicates_and_drops_empties():
    assert clean_tags(["Drum", "drum", "123", "of", "DRUM-loop"]) == ["drum", "drumloop"]


@pytest.mark.parametrize(
    ("plural", "candidates"),
    [
        ("drums", ["drum"]),
        ("melodies", ["melody"]),
        ("glasses", ["glass", "glasse"]),
        ("bass", []),
        ("chorus", []),
        ("bus", []),
        ("keys", ["key"]),
        ("boxes", ["box", "boxe"]),
        ("gas", []),
    ],
)
def test_singular_candidates(plural, candidates):
    assert singular_candidates(plural) == candidates


def test_vocabulary_folds_plurals_only_onto_existing_singulars_and_ranks_by_clip_count():
    train = [["Drums", "loop"], ["drum", "kick"], ["drums", "keys"], ["glasses"], ["bass", "loop"], ["bass"]]
    vocabulary = TagVocabulary.build(train, size=4)
    assert vocabulary.plurals == {"drums": "drum"}  # no "key" or "glass" tag exists to fold onto
    assert vocabulary.tags == ["drum", "bass", "loop", "glasses"]  # counts 3, 2, 2, then ties by name
    np.testing.assert_array_equal(vocabulary.multi_hot(["DRUMS", "loop", "unknown"]), [1, 0, 1, 0])
    assert not vocabulary.multi_hot(["keys", "the"]).any()


def test_vocabulary_counts_a_tag_once_per_clip():
    vocabulary = TagVocabulary.build([["drum", "drums", "Drum"], ["loop"], ["loop"]], size=1)
    assert vocabulary.tags == ["loop"]


def test_vocabulary_round_trips_through_json(tmp_path):
    vocabulary = TagVocabulary.build([["drums", "drum", "snare"]], size=10)
    vocabulary.save(tmp_path / "v.json")
    loaded = TagVocabulary.load(tmp_path / "v.json")
    assert loaded.tags == vocabulary.tags and loaded.plurals == vocabulary.plurals
