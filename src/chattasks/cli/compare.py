"""``chattasks compare``: did a run really get better than the baseline? Paired tests per task.

The library does the work (``chattasks.eval.compare.compare_runs``, gates in
``chattasks.eval.gate``); this module reads the options, prints one table per candidate (or
the report as JSON) and exits 3 when a ``--fail-if-worse`` gate trips.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from chattasks.cli.console import ExitCode, console, err_console, guarded

if TYPE_CHECKING:
    from chattasks.eval.comparison import CompareReport, Comparison

DEFAULT_SEED = 42  # chattasks.eval.compare's defaults, repeated so --help needs no import
DEFAULT_RESAMPLES = 10_000


@guarded
def compare_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR",
            help="Two or more run directories written by chattasks eval: RUN_A RUN_B [RUN_C ...]; the first "
            "is the baseline the others are compared with.",
        ),
    ],
    tasks: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(help="Comma-separated tasks to compare (default: every task both runs evaluated)."),
    ] = None,
    allow_different_data: Annotated[
        bool,
        typer.Option(
            "--allow-different-data",
            help="Compare tasks whose data fingerprints differ (e.g. another --limit) on the question indexes both runs completed.",
        ),
    ] = False,
    metric: Annotated[str, typer.Option(help="Per-question score: acc, or acc_norm (loglik runs).")] = "acc",
    fail_if_worse: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            "--fail-if-worse",
            metavar="TASK[:MARGIN]",
            help="Exit 3 when TASK got significantly worse (Holm-adjusted p < 0.05 and the 95% CI's upper end "
            "below -MARGIN, default 0). TASK '*' is every task, 'overall' the centred mean. Repeatable.",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON instead of tables.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the overall bootstrap.")] = DEFAULT_SEED,
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for the overall interval.")
    ] = DEFAULT_RESAMPLES,
) -> None:
    """Compare runs question by question: accuracy, difference, 95% CI and paired p-values per task."""
    from chattasks.eval.compare import compare_runs
    from chattasks.eval.gate import Gate, check_gates

    gates = [Gate.parse(text) for text in fail_if_worse or []]
    names = None if tasks is None else [name.strip() for name in tasks.split(",") if name.strip()]
    report = compare_runs(
        runs,
        tasks=names,
        allow_different_data=allow_different_data,
        metric=metric,
        seed=seed,
        resamples=resamples,
    )
    failures = check_gates(report, gates)
    if json_output:
        payload = report.to_dict()
        payload["failed_checks"] = [asdict(failure) for failure in failures]
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        _print_report(report)
    for failure in failures:
        err_console.print(f"check failed: {failure.message()}", highlight=False, markup=False, soft_wrap=True)
    if failures:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _print_report(report: CompareReport) -> None:
    labels = _labels(len(report.runs))
    for label, run in zip(labels, report.runs, strict=True):
        role = " (baseline)" if label == "A" else ""
        console.print(
            f"{label}{role}: {run.path} — {run.model or '?'} ({run.backend})", highlight=False, soft_wrap=True
        )
    if len(report.runs) > 2:
        console.print("each run is compared with the baseline A", highlight=False)
    for label, comparison in zip(labels[1:], report.comparisons, strict=True):
        console.print(comparison_table(comparison, label, report))
        _print_notes(comparison, label)


def _labels(count: int) -> list[str]:
    return [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(count)]


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1e}" if value < 1e-4 else f"{value:.4f}"


def _ci(ci95: tuple[float, float] | None) -> str:
    return "–" if ci95 is None else f"{ci95[0]:+.3f}, {ci95[1]:+.3f}"


def _coloured(text: str, difference: float | None, significant: bool) -> str:
    if not significant or difference is None or difference == 0:
        return text
    return f"[{'green' if difference > 0 else 'red'}]{text}[/]"


def comparison_table(comparison: Comparison, label: str, report: CompareReport) -> Any:
    """One candidate against the baseline as a ``rich`` table: a row per task and the centred mean."""
    from rich import box
    from rich.table import Table

    from chattasks.eval.comparison import Kind

    table = Table(
        title=f"{label} vs A ({report.metric}, paired)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=0,
        pad_edge=False,
    )
    for column in ("task", "n", "A", label, f"Δ {label}−A", "95% CI", "p", "p Holm", "+/−"):
        table.add_column(column, justify="left" if column == "task" else "right", no_wrap=True)
    for name, task in comparison.tasks.items():
        difference = _coloured(_fmt(task.difference, signed=True), task.difference, task.significant)
        table.add_row(
            f"{name} (t)" if task.kind is Kind.CONTINUOUS else name,
            f"{task.n:,}",
            _fmt(task.baseline.accuracy),
            _fmt(task.candidate.accuracy),
            difference,
            _ci(task.ci95),
            _p(task.p_value),
            _p(task.p_holm),
            f"+{task.gained}/−{task.lost}",
        )
    overall = comparison.overall
    significant = overall.p_value is not None and overall.p_value < report.alpha
    table.add_section()
    table.add_row(
        "overall",
        f"{sum(comparison.tasks[name].n for name in overall.tasks):,}",
        _fmt(overall.baseline),
        _fmt(overall.candidate),
        _coloured(_fmt(overall.difference, signed=True), overall.difference, significant),
        _ci(overall.ci95),
        _p(overall.p_value),
        "",
        "",
        style="bold",
    )
    tested = sum(1 for task in comparison.tasks.values() if task.p_value is not None)
    table.caption = (
        f"Δ = {label} − A on the questions both runs completed. 0/1 scores: McNemar's exact test, "
        "Newcombe's paired score interval (method 10), +/− questions gained/lost. (t): scores that are "
        "not 0/1 (means over samples): paired t-test and interval, +/− questions better/worse. p Holm: "
        f"adjusted for {tested} tasks. overall: centred means, percentile bootstrap over questions "
        f"({report.resamples:,} resamples, seed {report.seed})."
    )
    table.caption_justify = "left"
    return table


def _print_notes(comparison: Comparison, label: str) -> None:
    lines = [f"{name}: {note}" for name, task in comparison.tasks.items() for note in task.notes]
    if comparison.only_baseline:
        lines.append(f"tasks only in A (not compared): {', '.join(comparison.only_baseline)}")
    if comparison.only_candidate:
        lines.append(f"tasks only in {label} (not compared): {', '.join(comparison.only_candidate)}")
    lines += [f"{name}: not compared: {reason}" for name, reason in comparison.skipped.items()]
    for line in lines:
        console.print(f"  note: {line}", highlight=False, soft_wrap=True)
