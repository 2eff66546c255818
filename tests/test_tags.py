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


@pytest.mark.parametrize(
    "no_below, no_above, expected",
    [
        (1, 1.0, ["drum", "bass", "loop", "glasses", "keys", "kick"]),  # no limits: every tag, by clip count
        (2, 1.0, ["drum", "bass", "loop"]),  # glasses, keys, kick are in one clip each
        (2, 0.5, ["drum", "bass", "loop"]),  # at most int(0.5 × 6) = 3 clips: drum's 3 pass
        (2, 0.49, ["bass", "loop"]),  # int(0.49 × 6) = 2: drum's 3 clips are too many, as in gensim
    ],
)
def test_vocabulary_keeps_tags_within_coalas_document_limits(no_below, no_above, expected):
    """Document counts here (after folding drums → drum): drum 3, bass 2, loop 2, the others 1;
    gensim's filter_extremes keeps no_below ≤ count ≤ int(no_above × documents)."""
    train = [["Drums", "loop"], ["drum", "kick"], ["drums", "keys"], ["glasses"], ["bass", "loop"], ["bass"]]
    vocabulary = TagVocabulary.build(train, size=10, no_below=no_below, no_above=no_above)
    assert vocabulary.tags == expected


def test_freesound_align_coala_recipe_is_coalas_training_script():
    """xavierfav/coala configs/dual_ae_c.json and scripts/preproc_tags.py, value by value."""
    from conftest import configured

    config = configured("freesound_align:recipe=coala")
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.momentum, opt.weight_decay, opt.schedule) == (
        "sgd",
        5e-3,
        0.0,
        0.0,
        "constant",
    )
    assert (config.train.batch_size, config.train.num_epochs, config.train.select_by) == (128, 200, "last")
    assert config.train.early_stopping_patience >= config.train.num_epochs
    data, objective = config.data, config.objective
    assert (data.vocabulary_size, data.vocabulary_no_below, data.vocabulary_no_above) == (1000, 10, 0.7)
    weights = (objective.contrastive_weight, objective.audio_reconstruction_weight, objective.tag_reconstruction_weight)
    assert (objective.temperature, weights) == (0.1, (10.0, 5.0, 5.0))
    common = configured("freesound_align")
    assert (common.optimizer.name, common.data.vocabulary_no_below, common.data.vocabulary_no_above) == ("adam", 1, 1.0)


def test_plain_sgd_is_sgd_without_momentum():
    import jax.numpy as jnp
    from ml_collections import ConfigDict

    from runtime.optim import build_optimizer

    config = ConfigDict(dict(name="sgd", learning_rate=0.5, momentum=0.0, weight_decay=0.0, schedule="constant"))
    config.warmup_steps = 0
    tx = build_optimizer(config, total_steps=10, steps_per_epoch=5)
    params = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(params)
    for _ in range(2):  # the same step twice: no momentum carries the first into the second
        updates, state = tx.update({"w": jnp.array([2.0, 4.0])}, state, params)
        np.testing.assert_allclose(updates["w"], [-1.0, -2.0])
