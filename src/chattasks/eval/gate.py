"""Gating on a comparison: did a task get significantly worse? (``compare --fail-if-worse``)

A ``Gate`` names a task (``*``: every compared task; ``overall``: the centred mean) and a
MARGIN (default 0), in the task's score units (accuracy: 0.02 is two points; ``overall``:
centred-mean units). It trips for a candidate when all three hold:

- the difference (candidate − baseline) is negative,
- its p-value is below 0.05: for a task the Holm-adjusted one (across the comparison's tasks),
  for ``overall`` the bootstrap p-value,
- the upper end of its 95% interval is below −MARGIN: even the most favourable plausible
  difference is a drop of more than MARGIN.

A task with no test (no paired question, or a single one with several samples) cannot trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chattasks.eval.comparison import ALPHA, OVERALL, CompareReport

EVERY_TASK = "*"


@dataclass(frozen=True)
class Gate:
    """``TASK[:MARGIN]``: fail when TASK got significantly worse by more than MARGIN (module docstring)."""

    task: str
    margin: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Gate:
        """Read ``TASK`` or ``TASK:MARGIN`` (a task name may itself hold colons; the MARGIN is the
        part after the last one when it is a number). ValueError for a negative or empty spec."""
        text = text.strip()
        name, margin = text, 0.0
        head, sep, tail = text.rpartition(":")
        if sep:
            try:
                name, margin = head, float(tail)
            except ValueError:
                name, margin = text, 0.0
        if not name:
            raise ValueError(f"--fail-if-worse {text!r}: expected TASK or TASK:MARGIN, e.g. GSM8K:0.02")
        if not 0 <= margin < 1:
            raise ValueError(f"--fail-if-worse {text!r}: MARGIN must be in [0, 1), got {margin}")
        return cls(name, margin)


@dataclass(frozen=True)
class GateFailure:
    """A gate that tripped: which candidate and task, and the numbers that made it trip."""

    candidate: str
    task: str
    difference: float
    ci95: tuple[float, float]
    p_value: float
    margin: float

    def message(self) -> str:
        """One line saying what got worse and by how much."""
        margin = f" by more than {self.margin:g}" if self.margin else ""
        return (
            f"{self.task} got significantly worse{margin} in {self.candidate}: difference "
            f"{self.difference:+.4f} (95% CI {self.ci95[0]:+.4f} to {self.ci95[1]:+.4f}), p = {self.p_value:.3g}"
        )


def _failure(
    candidate: str,
    task: str,
    difference: float | None,
    ci95: tuple[float, float] | None,
    p: float | None,
    margin: float,
) -> GateFailure | None:
    """The failure when the numbers trip a gate with ``margin`` (module docstring), else None."""
    if difference is None or ci95 is None or p is None:
        return None
    if difference < 0 and p < ALPHA and ci95[1] < -margin:
        return GateFailure(candidate, task, difference, ci95, p, margin)
    return None


def check_gates(report: CompareReport, gates: Sequence[Gate]) -> list[GateFailure]:
    """Every gate that trips for some candidate; ValueError for a gate naming a task no
    comparison compared (a usage error: the gate could never be checked)."""
    failures: list[GateFailure | None] = []
    for gate in gates:
        if gate.task not in (EVERY_TASK, OVERALL) and not any(
            gate.task in c.tasks for c in report.comparisons
        ):
            compared = sorted({name for c in report.comparisons for name in c.tasks})
            raise ValueError(
                f"--fail-if-worse {gate.task}: no comparison has that task (compared: {', '.join(compared) or 'none'})"
            )
        for comparison in report.comparisons:
            candidate = comparison.candidate.path
            if gate.task == OVERALL:
                whole = comparison.overall
                failures.append(
                    _failure(candidate, OVERALL, whole.difference, whole.ci95, whole.p_value, gate.margin)
                )
                continue
            failures.extend(
                _failure(candidate, name, task.difference, task.ci95, task.p_holm, gate.margin)
                for name, task in comparison.tasks.items()
                if gate.task in (EVERY_TASK, name)
            )
    return [failure for failure in failures if failure is not None]
