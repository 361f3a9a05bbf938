"""nanochat's ``tasks.arc``, from chattasks."""

from chattasks.tasks.arc import ARC

__all__ = ["ARC"]
