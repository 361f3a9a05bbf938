"""Per-group scores of a task (MMLU by subject): accuracy and its 95% Wilson interval per group.

A record's group is ``SampleRecord.group`` (MMLU's subject, written by the scorers since journal
schema 2 gained the field; ``chattasks regrade RUN`` adds it to an older run's journal). A
question's score is the mean of its samples' scores, as in ``chattasks.eval.results``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chattasks.eval.record import SampleRecord
from chattasks.eval.results import wilson_interval


@dataclass(frozen=True)
class GroupScore:
    """The score of one group of a task's questions."""

    group: str
    n: int
    """Questions of the group."""
    correct: float
    """Sum over those questions of their mean score."""

    @property
    def accuracy(self) -> float:
        """Mean score of the group's questions."""
        return self.correct / self.n

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95% Wilson interval of the accuracy."""
        return wilson_interval(min(self.correct, self.n), self.n)


def group_scores(records: Iterable[SampleRecord]) -> list[GroupScore]:
    """The scores of every group among ``records``, by group name; empty when no record has a group."""
    questions: dict[int, list[SampleRecord]] = {}
    for record in records:
        questions.setdefault(record.index, []).append(record)
    sums: dict[str, list[float]] = {}
    for group in questions.values():
        name = group[0].group
        if name is None:
            continue
        totals = sums.setdefault(name, [0.0, 0.0])
        totals[0] += 1
        totals[1] += sum(record.score for record in group) / len(group)
    return [GroupScore(name, int(n), correct) for name, (n, correct) in sorted(sums.items())]
