"""Reading two runs' journals into per-question scores and pairing them (``chattasks compare``).

A run is read from its directory alone: run.json (tasks, limit, decoding, each task's data
fingerprint) and, when present, results.json (each task's ``eval_type`` and number of rows);
nothing is loaded from the datasets. A task's questions are its journaled indexes below the
run's number of rows (results.json's ``expected``, else run.json's ``limit``). A question counts
when all its samples are journaled (1 for multiple choice, the run's ``num_samples`` for
generative tasks); its score is the mean over them, as in results.json. Questions with only
some samples are counted as incomplete; journaled samples are never dropped without a count.

Two runs pair by (task, index): the questions both completed. Sample keys (index, sample) that
one run journaled and the other did not, and questions only one run completed, are counted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.eval.settings import RunSettings

METRICS = ("acc", "acc_norm")
"""What a question's score is read from: ``acc`` (``score``) or ``acc_norm`` (loglik's ``score_norm``)."""


@dataclass(frozen=True)
class RunInfo:
    """One run as a comparison names it: its directory, model (run.json's, else the description in
    results.json, e.g. for the embedded default model) and backend."""

    path: str
    model: str | None
    backend: str
    tasks: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"path": self.path, "model": self.model, "backend": self.backend, "tasks": list(self.tasks)}


@dataclass(frozen=True)
class TaskScores:
    """One run's questions of one task: the complete ones' scores and what else its journal holds."""

    task: str
    eval_type: str
    samples_per_question: int
    scores: dict[int, float]
    """Question index -> mean score over its samples, for complete questions."""
    chances: dict[int, float]
    """Question index -> chance score (1 / letters for multiple choice, else 0)."""
    keys: frozenset[tuple[int, int]]
    """Every (index, sample) journaled inside the run's rows."""
    incomplete: int
    """Questions with some but not all of their samples journaled."""
    fingerprint: str | None
    missing_metric: int = 0
    """Complete questions left out because a sample has no value for the metric (acc_norm)."""

    @property
    def binary(self) -> bool:
        """One sample per question and every score 0 or 1."""
        return self.samples_per_question == 1 and all(v in (0.0, 1.0) for v in self.scores.values())


@dataclass
class LoadedRun:
    """A run directory read for comparing: its description, settings and per-task facts."""

    info: RunInfo
    directory: RunDirectory
    settings: RunSettings
    fingerprints: dict[str, str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, list[SampleRecord]] = field(default_factory=dict, repr=False)
    """Journal records already read, by task (a task not here is read from the journal)."""

    def task_scores(self, task: str, metric: str = "acc") -> TaskScores:
        """The per-question scores of ``task`` (see the module docstring)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
        stored = self.results.get(task, {})
        if task in self.records:
            records = self.records[task]
        else:
            records = list(self.directory.read(task).records.values())
        eval_type = stored.get("eval_type") or _eval_type(records)
        per_question = self.settings.generation.num_samples if eval_type == "generative" else 1
        rows = stored.get("expected", self.settings.limit)
        by_index: dict[int, list[SampleRecord]] = {}
        for record in records:
            if (
                (rows is None or record.index < rows)
                and 0 <= record.sample < per_question
                and record.index >= 0
            ):
                by_index.setdefault(record.index, []).append(record)
        complete = {index: group for index, group in by_index.items() if len(group) == per_question}
        scores, chances, missing = {}, {}, 0
        for index, group in complete.items():
            values = [r.score if metric == "acc" else r.score_norm for r in group]
            if any(value is None for value in values):
                missing += 1
                continue
            scores[index] = sum(float(v or 0.0) for v in values) / per_question
            letters = group[0].letters
            chances[index] = 1 / len(letters) if eval_type == "categorical" and letters else 0.0
        return TaskScores(
            task=task,
            eval_type=eval_type,
            samples_per_question=per_question,
            scores=scores,
            chances=chances,
            keys=frozenset(r.key for group in by_index.values() for r in group),
            incomplete=len(by_index) - len(complete),
            fingerprint=self.fingerprints.get(task) or stored.get("fingerprint"),
            missing_metric=missing,
        )


def _eval_type(records: list[SampleRecord]) -> str:
    """A task's type from its records when results.json does not say: lettered ones are multiple choice."""
    return "categorical" if any(record.letters for record in records) else "generative"


def load_run(
    path: str | os.PathLike[str] | RunDirectory, records: dict[str, list[SampleRecord]] | None = None
) -> LoadedRun:
    """Read a run directory's run.json and results.json (RunDirError when it holds no run);
    ``records``: journal records the caller has already read, by task."""
    directory = path if isinstance(path, RunDirectory) else RunDirectory(path)
    stored = directory.read_run()
    settings = RunSettings.from_json(stored.get("settings", {}))
    results: dict[str, dict[str, Any]] = {}
    model = settings.model
    if directory.results_file.is_file():
        try:
            payload = json.loads(directory.results_file.read_text(encoding="utf-8"))
            results = {name: dict(value) for name, value in (payload.get("tasks") or {}).items()}
            model = model or (payload.get("model") or {}).get("model")
        except (OSError, ValueError, AttributeError, TypeError):
            results = {}
    tasks = list(settings.tasks) or list(results)
    info = RunInfo(str(directory.path), model, settings.backend, tasks)
    fingerprints = dict(stored.get("fingerprints") or {})
    return LoadedRun(info, directory, settings, fingerprints, results, dict(records or {}))


@dataclass(frozen=True)
class PairedTask:
    """Two runs' scores of one task, paired by question index."""

    task: str
    baseline: TaskScores
    candidate: TaskScores
    indexes: list[int]
    """The questions both runs completed, ascending."""

    @property
    def a(self) -> list[float]:
        """The baseline's scores of the paired questions."""
        return [self.baseline.scores[i] for i in self.indexes]

    @property
    def b(self) -> list[float]:
        """The candidate's scores of the paired questions."""
        return [self.candidate.scores[i] for i in self.indexes]

    @property
    def chance(self) -> float:
        """The mean chance score of the paired questions (the baseline's letters; 0 when none)."""
        values = [self.baseline.chances[i] for i in self.indexes]
        return sum(values) / len(values) if values else 0.0

    @property
    def binary(self) -> bool:
        """Whether both runs scored these questions 0/1 with one sample each (McNemar applies)."""
        return self.baseline.binary and self.candidate.binary

    def unpaired(self) -> tuple[int, int]:
        """Questions completed by (the baseline only, the candidate only)."""
        paired = len(self.indexes)
        return len(self.baseline.scores) - paired, len(self.candidate.scores) - paired

    def samples_only(self) -> tuple[int, int]:
        """Sample keys (index, sample) journaled by (the baseline only, the candidate only)."""
        a, b = self.baseline.keys, self.candidate.keys
        return len(a - b), len(b - a)


def pair(baseline: TaskScores, candidate: TaskScores) -> PairedTask:
    """Pair two runs' scores of the same task by question index."""
    indexes = sorted(set(baseline.scores) & set(candidate.scores))
    return PairedTask(baseline.task, baseline, candidate, indexes)
