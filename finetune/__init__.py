"""Downstream instrument recognition (OpenMIC-2018, IRMAS) and linear probes.

Built so far: `finetune.metrics` (multi-label and single-label metrics, partial-label aware,
equal to scikit-learn's definitions) and `finetune.attention` (Gururani et al.'s attention
classifier and the masked binary cross-entropy). Not built yet — tracked by the downstream
issue: the OpenMIC-2018 and IRMAS readers, the `python -m finetune` entry point on the shared
`runtime.loop.fit`, the frozen-embedding cache, the IRMAS evaluation protocol and reports.
"""
