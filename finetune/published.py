"""Published numbers to put beside ours (`python -m finetune.compare RUN… --published=KEY,…`).

Each entry: the task, the test-split metrics as the paper gives them, and how its decision
threshold was chosen — our runs choose theirs on validation, so a paper that chose on the test
set is optimistic against them (our reports carry that number too, as `extra.test_optimistic`).
Sources: docs/methods.md §7 and the papers named in each entry.
"""

from __future__ import annotations

from overtone.errors import unknown_name

PUBLISHED: dict[str, dict] = {
    "zhong2023_random": {
        "label": "Zhong et al. 2023, random init",
        "task": "irmas",
        "metrics": {"f1_micro": 0.634, "f1_macro": 0.536, "lrap": 0.780},
        "threshold": "chosen on test",
    },
    "zhong2023_nsynth": {
        "label": "Zhong et al. 2023, NSynth pretraining",
        "task": "irmas",
        "metrics": {"f1_micro": 0.674, "f1_macro": 0.584, "lrap": 0.814},
        "threshold": "chosen on test",
    },
    "zhong2023_nsynth_no_mixup": {
        "label": "Zhong et al. 2023, NSynth pretraining without mixup",
        "task": "irmas",
        "metrics": {"f1_micro": 0.657, "lrap": 0.804},
        "threshold": "chosen on test",
    },
    "han2017": {
        "label": "Han et al. 2017",
        "task": "irmas",
        "metrics": {"f1_micro": 0.602, "f1_macro": 0.503},
        "threshold": "fixed (their own)",
    },
    "openmic_forest": {
        "label": "OpenMIC baseline (random forest), ≈",
        "task": "openmic",
        "metrics": {"openmic_f1": 0.78},
        "threshold": "0.5",
    },
    "attentionmic": {
        "label": "AttentionMIC (Gururani et al. 2019), FC_T model",
        "task": "openmic",
        "metrics": {"openmic_f1": 0.797},
        "threshold": "0.5",
    },
}


def published_rows(keys: list[str], columns: tuple[str, ...]) -> list[dict]:
    """compare's rows for the published entries `keys`: one value each, no std; a metric the
    paper does not give is NaN (shown as —)."""
    rows = []
    for key in keys:
        if key not in PUBLISHED:
            raise unknown_name("published result", key, PUBLISHED, where="--published")
        entry = PUBLISHED[key]
        metrics = {
            name: {"mean": entry["metrics"].get(name, float("nan")), "std": None, "values": []} for name in columns
        }
        label = f"published: {entry['label']} (threshold {entry['threshold']})"
        rows.append({"label": label, "runs": [], "tasks": [entry["task"]], "metrics": metrics, "published": key})
    return rows
