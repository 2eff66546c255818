"""`python -m finetune --config=NAME [--encoder=RUN|random:NAME]`: downstream instrument recognition.

Tasks (`corpora.DATASETS` in their clip form: OpenMIC-2018, IRMAS, your folders, NSynth),
heads (`finetune.heads`: Gururani et al.'s attention classifier, a linear layer), three modes on
the shared loop (`finetune.train`: shipped features, frozen encoder through the embedding cache,
end-to-end fine-tuning), the evaluation protocol (`finetune.protocol`: windows, averaged scores, thresholds chosen on
validation), metrics equal to scikit-learn's (`finetune.metrics`), reports
(`finetune.report`) and `python -m finetune.compare` for several runs.
"""
