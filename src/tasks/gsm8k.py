"""nanochat's ``tasks.gsm8k``, from chattasks (``extract_answer`` normalises numbers; see its docstring)."""

from chattasks.tasks.gsm8k import GSM8K, extract_answer

__all__ = ["GSM8K", "extract_answer"]
