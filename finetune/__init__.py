"""`python -m finetune --config=NAME`: downstream instrument recognition on the shared loop.

Built: `openmic_attention` — Gururani et al.'s attention classifier (`finetune.attention`)
on OpenMIC-2018's shipped features, with partial-label metrics equal to scikit-learn's
(`finetune.metrics`) and reports (`finetune.report`). Not built yet (the downstream issue):
frozen or fine-tuned encoders on audio with an embedding cache, IRMAS and its evaluation
protocol, threshold selection on validation, `finetune.compare`.
"""
