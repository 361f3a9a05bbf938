"""Runs compared question by question: which questions flipped between two runs of a task.

Two runs pair on a task when they asked the same questions: equal data fingerprints, or (runs
with different ``--limit``s, whose fingerprints differ) the same prompt and reference at every
index both journals hold. A question is paired when both journals hold it. A question is
*solved* when the mean score of its samples is above one half (a single sample:
``SampleRecord.correct``). Between a base run and another: ``gained`` are the questions unsolved
in the base and solved in the other, ``lost`` the reverse; together they are the flipped
questions (McNemar's discordant pairs). The significance of a difference is ``chattasks
compare``'s (``report.comparison``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from chattasks.eval.record import SampleRecord
from chattasks.report.runs import ReportRun


@dataclass(frozen=True)
class PairedTask:
    """One task of two runs (``base`` and ``other``: positions in the report's runs), paired by question."""

    task: str
    base: int
    other: int
    n: int
    """Questions both runs answered."""
    base_solved: int
    other_solved: int
    gained: tuple[int, ...]
    """Question indexes unsolved in the base run and solved in the other."""
    lost: tuple[int, ...]
    """Question indexes solved in the base run and unsolved in the other."""

    @property
    def key(self) -> tuple[str, int, int]:
        """``(task, base, other)``."""
        return self.task, self.base, self.other

    @property
    def flipped(self) -> tuple[int, ...]:
        """Every question whose outcome differs between the two runs, in index order."""
        return tuple(sorted(self.gained + self.lost))

    @property
    def base_accuracy(self) -> float | None:
        """The share of paired questions the base run solved."""
        return self.base_solved / self.n if self.n else None

    @property
    def other_accuracy(self) -> float | None:
        """The share of paired questions the other run solved."""
        return self.other_solved / self.n if self.n else None


def solved(records: Iterable[SampleRecord]) -> dict[int, bool]:
    """Whether each question (by index) is solved: the mean score of its samples above one half."""
    sums: dict[int, list[float]] = {}
    for record in records:
        totals = sums.setdefault(record.index, [0.0, 0.0])
        totals[0] += record.score
        totals[1] += 1
    return {index: total / count > 0.5 for index, (total, count) in sums.items()}


def pair_task(
    task: str,
    runs: Sequence[ReportRun],
    base: int,
    other: int,
    outcomes: dict[tuple[int, str], dict[int, bool]] | None = None,
) -> PairedTask:
    """Pair the questions of ``task`` that runs ``base`` and ``other`` both answered (``outcomes``:
    a cache of ``solved`` per (run, task), filled as it goes)."""
    cache = outcomes if outcomes is not None else {}
    for run in (base, other):
        if (run, task) not in cache:
            cache[run, task] = solved(runs[run].samples.get(task, []))
    first, second = cache[base, task], cache[other, task]
    common = sorted(set(first) & set(second))
    return PairedTask(
        task=task,
        base=base,
        other=other,
        n=len(common),
        base_solved=sum(first[i] for i in common),
        other_solved=sum(second[i] for i in common),
        gained=tuple(i for i in common if second[i] and not first[i]),
        lost=tuple(i for i in common if first[i] and not second[i]),
    )


def differing_questions(first: Sequence[SampleRecord], second: Sequence[SampleRecord]) -> int:
    """How many of the indexes both record lists hold were asked differently (prompt or reference)."""
    asked = {record.index: (record.prompt, record.reference) for record in first}
    seen: set[int] = set()
    differ = 0
    for record in second:
        if record.index in asked and record.index not in seen:
            seen.add(record.index)
            differ += asked[record.index] != (record.prompt, record.reference)
    return differ


def pair_runs(runs: Sequence[ReportRun]) -> tuple[list[PairedTask], list[str]]:
    """Every pair of runs (earlier run as the base) on every task both asked the same questions,
    and a note for each task two runs asked differently (not paired)."""
    pairs, notes = [], []
    outcomes: dict[tuple[int, str], dict[int, bool]] = {}
    for base, other in combinations(range(len(runs)), 2):
        for task in runs[base].tasks:
            if task not in runs[other].results.tasks:
                continue
            if runs[base].fingerprint(task) != runs[other].fingerprint(task):
                differ = differing_questions(
                    runs[base].samples.get(task, []), runs[other].samples.get(task, [])
                )
                if differ:
                    notes.append(
                        f"{task}: {runs[base].label} and {runs[other].label} asked {differ} question(s) "
                        f"differently at the same index (different data): not paired"
                    )
                    continue
            pairs.append(pair_task(task, runs, base, other, outcomes))
    return pairs, notes
