"""nanochat's ChatCORE, exactly as its ``scripts/chat_eval.py`` computes it.

nanochat's number differs from chattasks' centred mean (``results.EvalResults.centered_mean``):

- it is defined only when all five of its tasks ran: ARC-Easy, ARC-Challenge, MMLU, GSM8K and
  HumanEval (SpellingBee is not among them), and averages over exactly those five;
- each task is centred on a fixed baseline, 0.25 for the three multiple-choice tasks and 0 for
  GSM8K and HumanEval: ``(solved - baseline) / (1 - baseline)``;
- a generative question counts as solved when any of its samples passes (pass@n, n the number of
  samples); a multiple-choice question when its answer is right.

Our centred mean instead averages every task of the run, centres multiple choice on the mean of
``1 / len(letters)`` of the rows, and scores a generative question by the mean of its samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

CHATCORE_BASELINES: dict[str, float] = {
    "ARC-Easy": 0.25,
    "ARC-Challenge": 0.25,
    "MMLU": 0.25,
    "GSM8K": 0.0,
    "HumanEval": 0.0,
}
"""nanochat's tasks of ChatCORE and the baseline accuracy each is centred on."""


class Solved(Protocol):
    """What ChatCORE reads of a task's result."""

    any_pass: float | None
    """The fraction of questions with a passing sample (None when none was evaluated)."""


def chatcore(results: Mapping[str, Solved]) -> tuple[float | None, str | None]:
    """(ChatCORE, None) when all of nanochat's five tasks have results, else (None, why not: the
    tasks not run, or run with no question evaluated)."""
    missing = [name for name in CHATCORE_BASELINES if name not in results]
    if missing:
        return None, f"not run: {', '.join(missing)}"
    empty = [name for name in CHATCORE_BASELINES if results[name].any_pass is None]
    if empty:
        return None, f"nothing evaluated yet: {', '.join(empty)}"
    total = 0.0
    for name, baseline in CHATCORE_BASELINES.items():
        solved = results[name].any_pass
        assert solved is not None  # checked above
        total += (solved - baseline) / (1.0 - baseline)
    return total / len(CHATCORE_BASELINES), None
