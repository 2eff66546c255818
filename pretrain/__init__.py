"""`python -m pretrain --config=NAME --workdir=DIR`: pretrain an encoder on a corpus."""

from pretrain.train import Pretrainer, build_model, train_and_evaluate

__all__ = ["Pretrainer", "build_model", "train_and_evaluate"]
