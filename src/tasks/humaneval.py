"""nanochat's ``tasks.humaneval``, from chattasks (graded in ``chattasks.sandbox``, not in-process)."""

from chattasks.tasks.humaneval import HumanEval, extract_imports, extract_program

__all__ = ["HumanEval", "extract_imports", "extract_program"]
