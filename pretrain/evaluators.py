"""Evaluators: what pretraining measures besides its objective's validation loss.

At every evaluation the loop hands the current model (evaluation mode, this process's own
copy of the weights) to the run's evaluator; its numbers join the validation row of
metrics.jsonl and TensorBoard, and `train.select_by` may choose the best checkpoint by one
of them. Configured by `config.evaluator`:

- `probe="family"`: NSynth instrument family, linearly, on unseen instruments. Up to
  `max_examples` training notes and as many validation notes (seeded samples; NSynth's
  validation instruments are all absent from its training split) are cropped at their onset
  and embedded (the mean of a note's patch embeddings); a ridge classifier fitted on the
  training notes is scored on the validation ones (`probe_accuracy`,
  encoders.diagnostics.ridge_probe).
- always, with a probe: collapse diagnostics of the same embeddings (per-dimension standard
  deviation, dead dimensions, RankMe), with a warning when the embedding has collapsed.

Every process computes the same numbers from the same notes (no collective), so decisions
taken on them are the same everywhere.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from encoders import encode_clips
from encoders.diagnostics import collapse_diagnostics, collapse_warning, ridge_probe
from overtone.errors import BadValueError, unknown_name

log = logging.getLogger(__name__)
PROBES = ("", "family")
CHUNK = 64  # clips per jitted call (the last chunk is padded, so one compilation serves all)


def check_evaluator(config) -> None:
    """The evaluator's options and `train.select_by`, checked before any data is read."""
    evaluator = config.get("evaluator", {})
    probe = evaluator.get("probe", "")
    if probe not in PROBES:
        raise unknown_name("probe", probe, PROBES, where="config.evaluator.probe")
    if probe and config.data.dataset != "nsynth":
        raise BadValueError(
            f"config.evaluator.probe={probe!r} reads NSynth notes; data.dataset is {config.data.dataset!r} "
            "(set --config.evaluator.probe= to turn the evaluator off)"
        )
    selectable = ["loss", "last"] + (["probe_accuracy"] if probe else [])
    select = config.train.get("select_by", "loss")
    if select not in selectable:
        raise unknown_name("metric", select, selectable, where="config.train.select_by")
    if probe and evaluator.get("max_examples", 0) < 4:
        raise BadValueError("config.evaluator.max_examples must be at least 4 (two instruments each side)")


class FamilyProbe:
    """The `probe="family"` evaluator: fitted on `fit_notes` (training notes), scored on
    `scored_notes` (validation notes), each loaded by `load` (the corpus loader: note, None →
    example with 'audio' cropped at the onset)."""

    def __init__(self, fit_notes: list, scored_notes: list, load, frontend, *, max_examples: int, seed: int):
        rng = np.random.default_rng(seed)
        fit, scored = (self._load(notes, load, max_examples, rng) for notes in (fit_notes, scored_notes))
        self.audio = np.stack([e["audio"] for _, e in fit + scored]).astype(np.float32)
        self.family = np.array([n.family for n, _ in fit + scored])
        self.fit_rows = np.arange(len(self.audio)) < len(fit)
        self.frontend = frontend
        self._embed = None
        seen = {n.instrument for n in fit_notes}
        unseen = {n.instrument for n, _ in scored} - seen
        log.info(
            "family probe: fitted on %d training notes, scored on %d validation notes of %d instruments "
            "(%d of them absent from training)",
            len(fit),
            len(scored),
            len({n.instrument for n, _ in scored}),
            len(unseen),
        )
        if len(np.unique(self.family[self.fit_rows])) < 2 or not len(scored):
            raise BadValueError(
                "the family probe needs training notes of two families or more and validation notes; "
                f"it found {len(np.unique(self.family[self.fit_rows]))} families and {len(scored)} notes "
                "(--config.evaluator.probe= turns it off)"
            )

    @staticmethod
    def _load(notes: list, load, max_examples: int, rng) -> list:
        """Up to `max_examples` notes (a seeded sample, in corpus order), with their examples;
        notes whose audio is unreadable (weight 0) are left out."""
        if len(notes) > max_examples:
            notes = [notes[i] for i in sorted(rng.choice(len(notes), max_examples, replace=False))]
        return [(note, example) for note in notes if (example := load(note, None))["weight"] > 0]

    def embeddings(self, encoder: nnx.Module) -> np.ndarray:
        graph, state = nnx.split(encoder)
        if self._embed is None:
            frontend = self.frontend
            self._embed = jax.jit(lambda state, x: jnp.mean(encode_clips(nnx.merge(graph, state), frontend, x), axis=1))
        count = len(self.audio)
        padded = np.concatenate([self.audio, np.zeros((-count % CHUNK, self.audio.shape[1]), np.float32)])
        leaves = jax.tree.leaves(state)  # where the weights are (explicit transfers only); none: logmel_stats
        device = getattr(leaves[0], "sharding", None) if leaves else None
        device = device or jax.local_devices()[0]
        chunks = (jax.device_put(padded[i : i + CHUNK], device) for i in range(0, len(padded), CHUNK))
        parts = [np.asarray(jax.device_get(self._embed(state, chunk))) for chunk in chunks]
        return np.concatenate(parts)[:count]

    def __call__(self, model) -> dict[str, float]:
        embeddings = self.embeddings(model.encoder)
        if not np.isfinite(embeddings).all():
            return {"probe_accuracy": float("nan")}
        out = collapse_diagnostics(embeddings)
        warning = collapse_warning(out)
        if warning:
            log.warning("%s (%d probe notes: training and validation)", warning, len(embeddings))
        fit, scored, family = self.fit_rows, ~self.fit_rows, self.family
        out["probe_accuracy"] = ridge_probe(embeddings[fit], family[fit], embeddings[scored], family[scored])
        return out


def build_evaluator(config, corpus, load, frontend):
    """The run's evaluator (None without `config.evaluator.probe`)."""
    evaluator = config.get("evaluator", {})
    if not evaluator.get("probe"):
        return None
    notes = corpus.splits["train"]
    options = dict(max_examples=evaluator.max_examples, seed=evaluator.get("seed", 0))
    return FamilyProbe(notes, corpus.splits["valid"], load, frontend, **options)
