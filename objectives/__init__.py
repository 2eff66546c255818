"""Pretraining objectives: each owns its head(s) and its loss.

`OBJECTIVES` is the one objective registry: name → builder(options, context) → an nnx.Module
called as `objective(encoder, frontend, batch, key, train=...)` returning `(loss, metrics)`.
The context carries what heads need to know about the rest of the model and the data.
"""

from __future__ import annotations

import dataclasses

from flax import nnx

from objectives.denoise import Denoise
from objectives.family_mixup import FamilyMixup
from objectives.multi import MultiObjective
from objectives.tag_align import TagAlign
from objectives.textual import Textual
from overtone.errors import BadValueError, UnknownNameError, unknown_name


@dataclasses.dataclass(frozen=True)
class Context:
    embedding_dim: int
    num_classes: dict[str, int]  # per target name, e.g. {"family": 11, "instrument": 1006}
    num_bands: int  # of the front-end's patches
    rngs: nnx.Rngs


def _family_mixup(options: dict, ctx: Context):
    target = options.get("target", "family")
    if target not in ctx.num_classes:
        raise BadValueError(f"family_mixup target {target!r} unknown; valid: {sorted(ctx.num_classes)}")
    return FamilyMixup(ctx.embedding_dim, num_classes=ctx.num_classes[target], rngs=ctx.rngs, **options)


def _denoise(options: dict, ctx: Context):
    return Denoise(ctx.embedding_dim, num_bands=ctx.num_bands, rngs=ctx.rngs, **options)


def _textual(options: dict, ctx: Context):
    return Textual(ctx.embedding_dim, rngs=ctx.rngs, **options)


def _tag_align(options: dict, ctx: Context):
    if "tags" not in ctx.num_classes:
        raise BadValueError("tag_align needs a tagged corpus: data.dataset='freesound'")
    return TagAlign(
        ctx.embedding_dim, vocabulary=ctx.num_classes["tags"], num_bands=ctx.num_bands, rngs=ctx.rngs, **options
    )


def _multi(options: dict, ctx: Context):
    parts = dict(options.pop("parts", {}))
    if options:
        raise TypeError(f"unexpected keyword argument(s) {sorted(options)} (only 'parts')")
    modules, weights = {}, {}
    for label, part in parts.items():
        part = dict(part)
        weights[label] = float(part.pop("weight", 1.0))
        if part.get("name") == "multi":
            raise BadValueError("multi objectives do not nest")
        modules[label] = build_objective(part, ctx)
    return MultiObjective(modules, weights)


OBJECTIVES = {
    "family_mixup": _family_mixup,
    "denoise": _denoise,
    "textual": _textual,
    "tag_align": _tag_align,
    "multi": _multi,
}


def check_objective(config) -> None:
    """Refuse an unknown objective name (also inside `multi`'s parts) before any data is read."""
    name = config["name"]
    if name not in OBJECTIVES:
        raise unknown_name("objective", name, OBJECTIVES)
    for part in dict(config.get("parts", {}) or {}).values():
        check_objective(part)


RECONSTRUCTS_INPUT = frozenset({"denoise"})  # objectives whose target is the (unmasked) input patch


def reconstructs_input(config) -> bool:
    """Whether the objective, or any part of a `multi` one, reconstructs its input patches (so
    input masking such as SpecAugment would corrupt its target)."""
    parts = dict(config.get("parts", {}) or {}).values()
    return config["name"] in RECONSTRUCTS_INPUT or any(reconstructs_input(part) for part in parts)


def build_objective(config, ctx: Context) -> nnx.Module:
    options = dict(config)
    name = options.pop("name")
    if name not in OBJECTIVES:
        raise unknown_name("objective", name, OBJECTIVES)
    try:
        return OBJECTIVES[name](options, ctx)
    except TypeError as err:
        raise UnknownNameError(f"objective {name!r} got an unknown option: {err}") from err
