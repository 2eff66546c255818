"""Pretraining objectives: each owns its head(s) and its loss.

`OBJECTIVES` is the one objective registry: name → builder(options, embedding_dim=, num_classes=,
rngs=) → an nnx.Module called as `objective(encoder, frontend, batch, key, train=...)`
returning `(loss, metrics)`.
"""

from __future__ import annotations

from flax import nnx

from objectives.family_mixup import FamilyMixup


def _family_mixup(options: dict, *, embedding_dim: int, num_classes: dict[str, int], rngs: nnx.Rngs):
    target = options.get("target", "family")
    if target not in num_classes:
        raise ValueError(f"family_mixup target {target!r} unknown; valid: {sorted(num_classes)}")
    return FamilyMixup(embedding_dim, num_classes=num_classes[target], rngs=rngs, **options)


OBJECTIVES = {"family_mixup": _family_mixup}


def build_objective(config, *, embedding_dim: int, num_classes: dict[str, int], rngs: nnx.Rngs):
    options = dict(config)
    name = options.pop("name")
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; registered: {sorted(OBJECTIVES)}")
    try:
        return OBJECTIVES[name](options, embedding_dim=embedding_dim, num_classes=num_classes, rngs=rngs)
    except TypeError as err:
        raise KeyError(f"objective {name!r} got an unknown option: {err}") from err
