"""The report's comparison table: each later run against the first, with ``chattasks compare``'s
statistics.

The statistics are ``compare_runs``', computed from the journal records the report has
already read: per task, the paired difference, its 95% interval and p-value (McNemar's exact test
with Newcombe's paired score interval for one 0/1 sample per question, the paired t-test and
interval otherwise) and the p-value Holm-adjusted across the tasks of the comparison; below the
tasks, the centred mean of both runs with a seeded paired bootstrap. Runs whose fingerprints
differ (e.g. another ``--limit``) are compared on the questions both hold, as ``pairs`` pairs
them. Gained and lost are the flipped questions of ``pairs`` (what the flipped view lists).
"""

from __future__ import annotations

from collections.abc import Sequence

from chattasks.eval.compare import compare_runs
from chattasks.eval.comparison import ALPHA, CompareReport, Method, OverallComparison, TaskComparison
from chattasks.eval.pairing import load_run
from chattasks.report.context import Cell, Table, fmt, fmt_signed
from chattasks.report.pairs import PairedTask
from chattasks.report.runs import ReportRun

METHOD_NAMES = {
    Method.MCNEMAR_EXACT: "McNemar's exact test",
    Method.NEWCOMBE_PAIRED: "Newcombe's paired score interval",
    Method.PAIRED_T: "paired t-test",
    Method.BOOTSTRAP: "paired bootstrap",
}
"""How the report names each test and interval."""


def compare_report_runs(runs: Sequence[ReportRun]) -> CompareReport | None:
    """Every later run compared with the first (None for a single run)."""
    if len(runs) < 2:
        return None
    loaded = [load_run(run.path, records=run.samples) for run in runs]
    return compare_runs(loaded, allow_different_data=True)


def fmt_p(value: float | None) -> str:
    """A p-value to 3 significant digits (``<0.0001`` below that); an en dash for none."""
    if value is None:
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.3g}"


def fmt_difference_interval(interval: Sequence[float] | None) -> str:
    """A 95% interval of a difference, signed, to 4 decimals."""
    return "–" if not interval else f"{interval[0]:+.4f} to {interval[1]:+.4f}"


def comparison_table(runs: Sequence[ReportRun], pairs: Sequence[PairedTask], report: CompareReport) -> Table:
    """The comparison of each later run with the first, task by task on the questions both
    answered, then each run's centred mean (the module docstring says what each column is)."""
    columns = [
        "task",
        "run",
        "paired n",
        f"accuracy ({runs[0].label})",
        "accuracy",
        "Δ",
        "95% CI of Δ",
        "p",
        "p (Holm)",
        "gained",
        "lost",
    ]
    table = Table(columns)
    for pair in pairs:
        if pair.base != 0:
            continue
        compared = report.comparisons[pair.other - 1].tasks.get(pair.task)
        table.rows.append((f"{pair.task}|{pair.other}", _task_cells(runs, pair, compared)))
    for position, comparison in enumerate(report.comparisons, start=1):
        if comparison.overall.tasks:
            cells = _overall_cells(runs[position].label, comparison.overall, report)
            table.footers.append((f"overall|{position}", cells))
    return table


def _task_cells(runs: Sequence[ReportRun], pair: PairedTask, compared: TaskComparison | None) -> list[Cell]:
    if compared is None or compared.n == 0:
        base, other = pair.base_accuracy, pair.other_accuracy
        delta = other - base if base is not None and other is not None else None
        stats = [Cell("–", "ci95"), Cell("–", "p"), Cell("–", "p_holm")]
    else:
        # compare's accuracies are each question's mean score, as in results.json
        base, other, delta = compared.baseline.accuracy, compared.candidate.accuracy, compared.difference
        test = METHOD_NAMES.get(compared.test, "no test") if compared.test else "no test"
        interval = METHOD_NAMES.get(compared.interval, "") if compared.interval else ""
        stats = [
            Cell(fmt_difference_interval(compared.ci95), "ci95", title=interval),
            Cell(fmt_p(compared.p_value), "p", compared.p_value, title=test),
            Cell(
                fmt_p(compared.p_holm),
                "p_holm",
                compared.p_holm,
                title=f"{test}, Holm-adjusted across this run's tasks",
                css=_significance(compared.p_holm, delta),
            ),
        ]
    return [
        Cell(pair.task, "task"),
        Cell(runs[pair.other].label, "run"),
        Cell(f"{pair.n:,}", "n", pair.n),
        Cell(fmt(base), "base_accuracy", base),
        Cell(fmt(other), "other_accuracy", other),
        Cell(fmt_signed(delta), "delta", delta),
        *stats,
        Cell(str(len(pair.gained)), "gained", len(pair.gained), css="good" if pair.gained else ""),
        Cell(str(len(pair.lost)), "lost", len(pair.lost), css="bad" if pair.lost else ""),
    ]


def _overall_cells(label: str, overall: OverallComparison, report: CompareReport) -> list[Cell]:
    method = (
        f"{METHOD_NAMES[overall.method]}: questions resampled within each task, "
        f"{report.resamples:,} resamples, seed {report.seed}, percentile interval"
    )
    return [
        Cell("centred mean", "task", title=f"over {len(overall.tasks)} task(s): {', '.join(overall.tasks)}"),
        Cell(label, "run"),
        Cell(f"{len(overall.tasks)} tasks", "n"),
        Cell(fmt(overall.baseline), "base_accuracy"),
        Cell(fmt(overall.candidate), "other_accuracy"),
        Cell(fmt_signed(overall.difference), "delta"),
        Cell(fmt_difference_interval(overall.ci95), "ci95", title=method),
        Cell(
            fmt_p(overall.p_value), "p", title=method, css=_significance(overall.p_value, overall.difference)
        ),
        Cell("", "p_holm"),
        Cell("", "gained"),
        Cell("", "lost"),
    ]


def _significance(p: float | None, difference: float | None) -> str:
    """``good``/``bad`` for a significant gain/loss, else nothing."""
    if p is None or difference is None or p >= ALPHA or difference == 0:
        return ""
    return "good" if difference > 0 else "bad"
