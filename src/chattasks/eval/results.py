"""Results: per-task scores with confidence intervals, the centred mean, results.json, the table.

Accuracy is the mean score over the questions evaluated, a question's score being the mean over
its samples (so with several samples it is the unbiased pass@1). Its 95% confidence interval is
the Wilson score interval for ``accuracy * n`` successes in ``n`` trials, ``z = 1.959964``:

    centre = (p + z^2 / 2n) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)

which, unlike the normal approximation ``p +- z sqrt(p (1 - p) / n)``, stays inside [0, 1] and
is not degenerate at 0 or 1 correct answers (with several samples per question it treats each
question as one trial). The overall score is ChatCORE-style, as nanochat reports it: each task's
accuracy centred on chance, ``(accuracy - chance) / (1 - chance)``, averaged over tasks; chance is
the mean of ``1 / len(letters)`` over the rows evaluated for multiple choice (0.25 for four
choices) and 0 for generative tasks (whose centred score is then just their accuracy). The
``loglik`` scorer's acc (not acc_norm) is the one centred.

Extraction failures (``no_answer``, ``not_a_letter``), replies cut off inside their reasoning
(``truncated_in_reasoning``) and sandbox ``timeout``/``sandbox_error`` are counted per task, over
samples, next to the accuracy; they score 0 inside it.

nanochat's own ChatCORE (``chatcore``: fixed baselines, its five tasks only, a generative question
solved when any sample passes) is reported beside the centred mean when those five tasks ran;
otherwise results.json says why it is absent (and the table does, when some of them ran).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chattasks.eval.chatcore import CHATCORE_BASELINES, chatcore
from chattasks.eval.record import SampleRecord

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: ``successes`` out of ``n`` (see module docstring).

    ``successes`` may be fractional (a mean score times n). With ``n == 0`` nothing is known: (0, 1).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def centered(accuracy: float, chance: float) -> float:
    """Accuracy above chance, scaled so that chance is 0 and perfect is 1."""
    if not 0 <= chance < 1:
        raise ValueError(f"chance must be in [0, 1), got {chance}")
    return (accuracy - chance) / (1 - chance)


@dataclass
class TaskResult:
    """The score of one task (what results.json holds under ``tasks.<name>``)."""

    task: str
    eval_type: str
    n: int  # questions fully evaluated (all their samples journaled)
    expected: int  # questions the run covers
    samples: int  # samples journaled for those questions
    correct: float  # sum over questions of their mean score
    accuracy: float | None
    ci95: tuple[float, float]
    chance: float
    centered: float | None
    failures: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    acc_norm: float | None = None
    acc_norm_ci95: tuple[float, float] | None = None
    pass_at_k: dict[str, float] = field(default_factory=dict)
    fingerprint: str | None = None
    duplicates: int = 0
    corrupt: int = 0
    any_pass: float | None = None
    """The fraction of questions with a passing sample (pass@n; the accuracy with one sample)."""
    tools: str | None = None
    """The tool offered to the model on this task (``calculator``), None when none was."""

    @property
    def missing(self) -> int:
        """Questions of the run not (fully) in the journal yet."""
        return self.expected - self.n

    @property
    def failure_count(self) -> int:
        """All failed samples: extraction failures, timeouts and sandbox errors together."""
        return sum(self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (for results.json)."""
        payload = asdict(self)
        payload["ci95"] = list(self.ci95)
        payload["acc_norm_ci95"] = list(self.acc_norm_ci95) if self.acc_norm_ci95 else None
        payload["missing"] = self.missing
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> TaskResult:
        """Rebuild from ``to_dict()``'s form."""
        data = {key: value for key, value in payload.items() if key in cls.__dataclass_fields__}
        data["ci95"] = tuple(data["ci95"])
        if data.get("acc_norm_ci95") is not None:
            data["acc_norm_ci95"] = tuple(data["acc_norm_ci95"])
        return cls(**data)


def summarize_task(
    task: str,
    eval_type: str,
    records: Iterable[SampleRecord],
    *,
    expected: int,
    num_samples: int = 1,
    ks: Iterable[int] = (1,),
    fingerprint: str | None = None,
    duplicates: int = 0,
    corrupt: int = 0,
    rows: Collection[int] | None = None,
) -> TaskResult:
    """Aggregate one task's journal records (one per (index, sample), indices ``< expected``, or
    indices in ``rows`` when the run evaluates only some rows: then ``expected`` is their number)."""
    complete = complete_questions(records, expected, num_samples, rows)
    failures: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    for group in complete.values():
        failures.update(str(record.failure) for record in group if record.failure is not None)
        methods.update(str(record.method) for record in group)
    n = len(complete)
    correct = sum(_mean(record.score for record in group) for group in complete.values())
    chances = [_chance(eval_type, group[0]) for group in complete.values()]
    chance = sum(chances) / n if n else (0.25 if eval_type == "categorical" else 0.0)
    accuracy = correct / n if n else None
    result = TaskResult(
        task=task,
        eval_type=eval_type,
        n=n,
        expected=expected,
        samples=sum(len(group) for group in complete.values()),
        correct=correct,
        accuracy=accuracy,
        ci95=wilson_interval(min(correct, n), n),
        chance=chance,
        centered=centered(accuracy, chance) if accuracy is not None else None,
        failures=dict(sorted(failures.items())),
        methods=dict(sorted(methods.items())),
        fingerprint=fingerprint,
        duplicates=duplicates,
        corrupt=corrupt,
    )
    groups = list(complete.values())
    result.any_pass = sum(1.0 for group in groups if any(r.correct for r in group)) / n if n else None
    offered = Counter(str(r.details["tools"]) for g in groups for r in g if r.details.get("tools"))
    result.tools = offered.most_common(1)[0][0] if offered else None
    if n and eval_type == "categorical" and all(r.score_norm is not None for g in groups for r in g):
        correct_norm = sum(_mean(float(r.score_norm or 0.0) for r in group) for group in groups)
        result.acc_norm = correct_norm / n
        result.acc_norm_ci95 = wilson_interval(min(correct_norm, n), n)
    if n and num_samples > 1:
        from chattasks.passk import mean_pass_at_k

        counts = [(len(group), sum(1 for r in group if r.correct)) for group in groups]
        result.pass_at_k = {f"pass@{k}": value for k, value in mean_pass_at_k(counts, tuple(ks)).items()}
    return result


def complete_questions(
    records: Iterable[SampleRecord], expected: int, num_samples: int, rows: Collection[int] | None = None
) -> dict[int, list[SampleRecord]]:
    """The records of each question whose ``num_samples`` samples are all there (indices < ``expected``,
    or in ``rows`` when given)."""
    by_question: dict[int, list[SampleRecord]] = {}
    for record in records:
        inside = record.index in rows if rows is not None else 0 <= record.index < expected
        if inside and 0 <= record.sample < num_samples:
            by_question.setdefault(record.index, []).append(record)
    return {index: group for index, group in by_question.items() if len(group) == num_samples}


def _mean(values: Iterable[float]) -> float:
    items = [float(value) for value in values]
    return sum(items) / len(items)


def _chance(eval_type: str, record: SampleRecord) -> float:
    """A question's chance score: one over its letters for multiple choice, 0 for generative tasks."""
    return 1 / len(record.letters) if eval_type == "categorical" and record.letters else 0.0


@dataclass
class EvalResults:
    """The scores of a run, per task, with what was run (``meta``): what ``evaluate_model`` returns."""

    tasks: dict[str, TaskResult]
    meta: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[SampleRecord]] = field(default_factory=dict, repr=False)
    """The journal records the scores were computed from, per task, in (index, sample) order."""

    def __getitem__(self, task: str) -> TaskResult:
        return self.tasks[task]

    @property
    def centered_mean(self) -> float | None:
        """The ChatCORE-style overall score: the mean of the tasks' centred accuracies."""
        values = [result.centered for result in self.tasks.values() if result.centered is not None]
        return sum(values) / len(values) if values else None

    @property
    def chatcore(self) -> float | None:
        """nanochat's ChatCORE (``chatcore`` module), None unless its five tasks ran."""
        return chatcore(self.tasks)[0]

    @property
    def chatcore_absent(self) -> str | None:
        """Why ``chatcore`` is None (None when it is not)."""
        return chatcore(self.tasks)[1]

    @property
    def complete(self) -> bool:
        """Whether every question of every task is in the journal."""
        return all(result.missing == 0 for result in self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form written to results.json."""
        return {
            "centered_mean": self.centered_mean,
            "chatcore": self.chatcore,
            "chatcore_absent": self.chatcore_absent,
            "complete": self.complete,
            "tasks": {name: result.to_dict() for name, result in self.tasks.items()},
            **self.meta,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> EvalResults:
        """Rebuild from results.json's form."""
        tasks = {name: TaskResult.from_dict(value) for name, value in payload["tasks"].items()}
        meta = {
            key: value
            for key, value in payload.items()
            if key not in ("tasks", "centered_mean", "chatcore", "chatcore_absent", "complete")
        }
        return cls(tasks, meta)

    def write(self, path: str | Path) -> None:
        """Write results.json atomically."""
        from chattasks.eval.journal import write_json

        write_json(Path(path), self.to_dict())

    def table(self) -> Any:
        """The results as a ``rich`` table."""
        from rich.table import Table

        model = self.meta.get("model") or {}
        title = f"chattasks results: {model.get('model', '?')} ({model.get('backend', '?')})"
        table = Table(title=title, title_justify="left")
        for column, justify in (
            ("task", "left"),
            ("n", "right"),
            ("accuracy", "right"),
            ("95% CI", "right"),
            ("extra", "left"),
            ("failures", "right"),
            ("centred", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for result in self.tasks.values():
            extra = []
            if result.acc_norm is not None:
                extra.append(f"acc_norm {result.acc_norm:.4f}")
            extra.extend(f"{name} {value:.4f}" for name, value in result.pass_at_k.items())
            if result.tools:
                extra.append(f"tools: {result.tools}")
            if result.missing:
                extra.append(f"[yellow]{result.missing} missing[/]")
            failures = ", ".join(f"{count} {kind}" for kind, count in result.failures.items()) or "0"
            table.add_row(
                result.task,
                f"{result.n:,}",
                _fmt(result.accuracy),
                f"{result.ci95[0]:.3f}–{result.ci95[1]:.3f}" if result.n else "–",
                "; ".join(extra),
                failures,
                _fmt(result.centered),
            )
        table.add_section()
        table.add_row("centred mean", "", "", "", "", "", _fmt(self.centered_mean), style="bold")
        if set(self.tasks) & set(CHATCORE_BASELINES):  # a run of other tasks gets no ChatCORE line
            absent = self.chatcore_absent
            table.add_row(
                "nanochat ChatCORE", "", "", "", absent or "", "", _fmt(self.chatcore), style="bold"
            )
        return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
