"""Scorers: one file per scoring method, all implementing ``base.Scorer``; ``scorer_for`` picks one.

Multiple choice (categorical tasks) is scored by the method the run asks for (``MC_SCORERS``:
``letter``, ``loglik`` or ``generate``); generative tasks by ``GenerativeScorer``, or by
``SandboxScorer`` when the task grades by running code (``Task.runs_code``).
"""

from __future__ import annotations

from chattasks.errors import TaskError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.scorers.base import Batch, Question, Scorer
from chattasks.eval.scorers.choice import ChoiceByGenerationScorer, LetterScorer
from chattasks.eval.scorers.generative import GenerativeScorer
from chattasks.eval.scorers.loglik import LoglikScorer
from chattasks.eval.scorers.sandboxed import SandboxScorer
from chattasks.task import Task

MC_SCORERS = ("letter", "loglik", "generate")
"""The ways a multiple-choice task can be scored (``--mc-scorer``)."""

__all__ = [
    "MC_SCORERS",
    "Batch",
    "ChoiceByGenerationScorer",
    "GenerativeScorer",
    "LetterScorer",
    "LoglikScorer",
    "Question",
    "SandboxScorer",
    "Scorer",
    "scorer_for",
]


def scorer_for(task: Task, eval_type: str, mc_scorer: str, generation: GenerationConfig) -> Scorer:
    """The scorer of ``task`` (of ``eval_type``) in a run with these settings."""
    if eval_type == "generative":
        return SandboxScorer(generation) if task.runs_code else GenerativeScorer(generation)
    if eval_type != "categorical":
        raise TaskError(f"eval_type {eval_type!r}; expected 'categorical' or 'generative'")
    if mc_scorer == "letter":
        return LetterScorer(generation.seed, generation.reasoning_tags)
    if mc_scorer == "loglik":
        return LoglikScorer()
    if mc_scorer == "generate":
        return ChoiceByGenerationScorer(generation.seed, generation.reasoning_tags)
    raise ValueError(f"mc_scorer must be one of {', '.join(MC_SCORERS)}; got {mc_scorer!r}")
