"""The typed results of comparing runs (``compare.compare_runs``): per task, overall, per candidate.

Every difference is candidate − baseline over the questions both runs completed. Each type has
``to_dict()`` (JSON-ready: enums as their values, tuples as lists), which ``chattasks compare
--json`` prints; ``compare`` documents how each number is computed.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from chattasks.eval.pairing import RunInfo
from chattasks.eval.stats import CONFIDENCE

DEFAULT_SEED = 42
DEFAULT_RESAMPLES = 10_000
ALPHA = 0.05
OVERALL = "overall"
"""The name ``Gate`` and the table use for the centred mean."""


class Kind(str, enum.Enum):
    """What a task's per-question scores are, which decides the test and interval."""

    BINARY = "binary"
    """One 0/1 sample per question: McNemar's exact test, Newcombe's paired score interval."""
    CONTINUOUS = "continuous"
    """Anything else (means over samples): the paired t-test and t interval."""
    EMPTY = "empty"
    """No paired question: nothing to test."""

    def __str__(self) -> str:
        return self.value


class Method(str, enum.Enum):
    """A test or interval, as results name it."""

    MCNEMAR_EXACT = "mcnemar-exact"
    NEWCOMBE_PAIRED = "newcombe-paired-score"
    PAIRED_T = "paired-t"
    BOOTSTRAP = "paired-bootstrap"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Side:
    """What one run of a comparison holds of a task."""

    accuracy: float | None
    """Mean score over the paired questions (None when there are none)."""
    questions: int
    """Complete questions this run has (paired or not)."""
    unpaired: int
    """Complete questions the other run lacks."""
    samples_only: int
    """Journaled (index, sample) keys the other run lacks."""
    incomplete: int
    """Questions with some of their samples missing."""
    samples_per_question: int
    fingerprint: str | None


@dataclass(frozen=True)
class TaskComparison:
    """One task of a comparison: both runs' accuracy on the paired questions and the paired test."""

    task: str
    kind: Kind
    n: int
    """Paired questions."""
    baseline: Side
    candidate: Side
    difference: float | None
    """candidate − baseline accuracy."""
    ci95: tuple[float, float] | None
    interval: Method | None
    test: Method | None
    p_value: float | None
    p_holm: float | None
    """Holm-adjusted across the tasks of this comparison that have a p-value."""
    gained: int
    """Questions better in the candidate (0/1: wrong -> right)."""
    lost: int
    """Questions worse in the candidate (0/1: right -> wrong)."""
    ties: int
    chance: float
    centered_difference: float | None
    """difference / (1 − chance): the task's change of centred score."""
    same_data: bool | None
    """Whether the data fingerprints agree (None: a run lacks one)."""
    notes: list[str] = field(default_factory=list)
    gained_indexes: list[int] = field(default_factory=list)
    """The question indexes counted in ``gained``, ascending (for showing what flipped)."""
    lost_indexes: list[int] = field(default_factory=list)
    """The question indexes counted in ``lost``, ascending."""

    @property
    def significant(self) -> bool:
        """Whether the Holm-adjusted p-value is below 0.05."""
        return self.p_holm is not None and self.p_holm < ALPHA

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        payload = asdict(self)
        for key in ("kind", "interval", "test"):
            payload[key] = None if payload[key] is None else str(payload[key])
        payload["ci95"] = list(self.ci95) if self.ci95 else None
        payload["significant"] = self.significant
        return payload


@dataclass(frozen=True)
class OverallComparison:
    """The centred mean of both runs over the paired questions and its bootstrap interval."""

    tasks: list[str]
    """The tasks averaged (those with paired questions)."""
    baseline: float | None
    candidate: float | None
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    method: Method = Method.BOOTSTRAP

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        payload = asdict(self)
        payload["ci95"] = list(self.ci95) if self.ci95 else None
        payload["method"] = str(self.method)
        return payload


@dataclass(frozen=True)
class Comparison:
    """One candidate run against the baseline."""

    baseline: RunInfo
    candidate: RunInfo
    tasks: dict[str, TaskComparison]
    overall: OverallComparison
    only_baseline: list[str]
    """Tasks only the baseline evaluated."""
    only_candidate: list[str]
    """Tasks only the candidate evaluated."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Tasks in both runs but not compared, with the reason."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "baseline": self.baseline.path,
            "candidate": self.candidate.path,
            "tasks": {name: task.to_dict() for name, task in self.tasks.items()},
            "overall": self.overall.to_dict(),
            "only_baseline": list(self.only_baseline),
            "only_candidate": list(self.only_candidate),
            "skipped": dict(self.skipped),
        }


@dataclass(frozen=True)
class CompareReport:
    """What ``compare_runs`` returns: every run and each one's comparison with the first."""

    runs: list[RunInfo]
    comparisons: list[Comparison]
    metric: str
    seed: int
    resamples: int
    alpha: float = ALPHA
    confidence: float = CONFIDENCE

    @property
    def baseline(self) -> RunInfo:
        """The first run, which every other is compared with."""
        return self.runs[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (``chattasks compare --json``)."""
        return {
            "baseline": self.baseline.path,
            "runs": [run.to_dict() for run in self.runs],
            "metric": self.metric,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "methods": {
                "binary": {"test": str(Method.MCNEMAR_EXACT), "interval": str(Method.NEWCOMBE_PAIRED)},
                "continuous": {"test": str(Method.PAIRED_T), "interval": str(Method.PAIRED_T)},
                "overall": {"test": str(Method.BOOTSTRAP), "interval": "bootstrap-percentile"},
                "adjustment": "holm",
            },
            "seed": self.seed,
            "resamples": self.resamples,
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
        }
