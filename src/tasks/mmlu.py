"""nanochat's ``tasks.mmlu``, from chattasks."""

from chattasks.tasks.mmlu import MMLU

__all__ = ["MMLU"]
