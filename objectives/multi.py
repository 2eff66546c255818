"""Several objectives on one shared encoder, with weights (docs/methods.md §4; Taenzer et al. compare
objectives, COALA weights its terms).

    objective = dict(name="multi", parts=dict(
        mixup=dict(name="family_mixup", weight=1.0),
        denoise=dict(name="denoise", weight=10.0, noise="additive")))

Each part sees the same batch and its own RNG stream (the step key folded with the part's
index in sorted-name order); the loss is Σ weight·loss. Every part's loss and metrics are
logged under its name (`mixup/loss`, `denoise/mse`, …).
"""

from __future__ import annotations

import jax
from flax import nnx

from overtone.errors import BadValueError


class MultiObjective(nnx.Module):
    def __init__(self, parts: dict[str, nnx.Module], weights: dict[str, float]):
        if not parts:
            raise BadValueError("the multi objective needs at least one part")
        self.parts = nnx.Dict(parts)
        self.weights = dict(weights)

    def __call__(self, encoder, frontend, batch: dict, key: jax.Array, *, train: bool):
        total = 0.0
        metrics = {}
        for index, name in enumerate(sorted(self.weights)):
            loss, part_metrics = self.parts[name](encoder, frontend, batch, jax.random.fold_in(key, index), train=train)
            total = total + self.weights[name] * loss
            metrics[f"{name}/loss"] = loss
            metrics.update({f"{name}/{k}": v for k, v in part_metrics.items()})
        return total, metrics
