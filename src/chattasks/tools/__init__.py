"""Tools a model may call while it answers; for now the calculator of GSM8K-style ``python`` parts."""

from chattasks.tools.calculator import calculate, use_calculator

__all__ = ["calculate", "use_calculator"]
