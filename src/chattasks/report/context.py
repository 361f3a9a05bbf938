"""What the report's template shows, computed from the runs: header rows, task tables and subject
tables, as plain values the template only lays out (the comparison table: ``comparison``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chattasks.eval.results import TaskResult
from chattasks.report.groups import group_scores
from chattasks.report.runs import ReportRun


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, the field it shows (for tests and sorting) and a sort key."""

    text: str
    field: str = ""
    sort: float | str | None = None
    title: str = ""
    css: str = ""


@dataclass
class Table:
    """A table: a header row and rows of cells, each row optionally keyed (``data-key``)."""

    columns: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    footers: list[tuple[str, list[Cell]]] = field(default_factory=list)
    """Keyed rows below the body (totals), left in place when the body is sorted."""


def fmt(value: float | None, digits: int = 4) -> str:
    """A score as the CLI table prints it; an en dash for none."""
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_interval(interval: Sequence[float] | None) -> str:
    """A 95% interval as ``low–high`` to 3 decimals."""
    return "–" if not interval else f"{interval[0]:.3f}–{interval[1]:.3f}"


def fmt_signed(value: float | None) -> str:
    """A difference with its sign, 4 decimals; an en dash for none."""
    return "–" if value is None else f"{value:+.4f}"


def fmt_seconds(seconds: float | None) -> str:
    """A duration for people: ``42.1 s``, ``12 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def header_rows(runs: Sequence[ReportRun]) -> list[tuple[str, list[str]]]:
    """The header table: one row per setting, one value per run."""
    rows: list[tuple[str, list[str]]] = []

    def add(name: str, values: list[Any]) -> None:
        if any(value not in (None, "", {}) for value in values):
            rows.append((name, ["–" if value in (None, "") else str(value) for value in values]))

    metas = [run.results.meta for run in runs]
    models = [meta.get("model") or {} for meta in metas]
    add("model", [model.get("model") for model in models])
    add("backend", [model.get("backend") for model in models])
    add(
        "model details",
        [_pairs({k: v for k, v in m.items() if k not in ("model", "backend")}) for m in models],
    )
    add("multiple-choice scorer", [meta.get("mc_scorer") for meta in metas])
    add("decoding", [_pairs(meta.get("generation") or {}) for meta in metas])
    add("limit", [meta.get("limit") for meta in metas])
    tasks: list[str] = []
    for run in runs:
        tasks.extend(task for task in run.tasks if task not in tasks)
    for task in tasks:
        add(f"data: {task}", [(run.fingerprint(task) or "")[:12] for run in runs])
    add("chattasks version", [meta.get("chattasks_version") for meta in metas])
    add("started", [run.settings.get("created") for run in runs])
    add("finished", [meta.get("finished") for meta in metas])
    add("re-graded", [meta.get("regraded") for meta in metas])
    add(
        "wall time",
        [fmt_seconds(meta.get("wall_time_s")) if "wall_time_s" in meta else None for meta in metas],
    )
    add(
        "model time",
        [fmt_seconds(meta.get("sample_time_s")) if "sample_time_s" in meta else None for meta in metas],
    )
    add("run directory", [str(run.path) for run in runs])
    return rows


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items() if value is not None)


def task_table(run: ReportRun) -> Table:
    """The per-task table of a run: every number exactly as results.json has it (rounded for display)."""
    results = list(run.results.tasks.values())
    kinds = sorted({kind for result in results for kind in result.failures})
    ks = sorted({key for result in results for key in result.pass_at_k}, key=lambda k: int(k.split("@")[1]))
    norm = any(result.acc_norm is not None for result in results)
    missing = any(result.missing for result in results)
    columns = ["task", "type", "n", "accuracy", "95% CI"]
    columns += ["acc_norm"] * norm + ks + kinds + ["missing"] * missing + ["centred", "data"]
    table = Table(columns)
    for result in results:
        cells = [
            Cell(result.task, "task"),
            Cell(result.eval_type, "type"),
            Cell(f"{result.n:,}", "n", result.n),
            Cell(fmt(result.accuracy), "accuracy", result.accuracy),
            Cell(fmt_interval(result.ci95 if result.n else None), "ci95"),
        ]
        if norm:
            cells.append(Cell(fmt(result.acc_norm), "acc_norm", title=fmt_interval(result.acc_norm_ci95)))
        cells += [Cell(fmt(result.pass_at_k.get(key)), key) for key in ks]
        cells += [
            Cell(str(result.failures.get(kind, 0)), f"failures.{kind}", css=_warn(result, kind))
            for kind in kinds
        ]
        if missing:
            cells.append(Cell(str(result.missing), "missing", css="warn" if result.missing else ""))
        cells.append(Cell(fmt(result.centered), "centered", result.centered))
        cells.append(Cell((result.fingerprint or "")[:12], "fingerprint", title=result.fingerprint or ""))
        table.rows.append((result.task, cells))
    blank = len(columns) - 2
    table.footers.append(
        (
            "centred mean",
            [
                Cell("centred mean", "label"),
                *[Cell("")] * blank,
                Cell(fmt(run.results.centered_mean), "centered_mean"),
            ],
        )
    )
    return table


def _warn(result: TaskResult, kind: str) -> str:
    return "warn" if result.failures.get(kind) else ""


def group_tables(runs: Sequence[ReportRun]) -> list[tuple[str, Table]]:
    """For every task whose records carry groups (MMLU's subjects): a sortable table of each
    group's n, accuracy and interval per run (and the change from the first run)."""
    tables = []
    tasks: list[str] = []
    for run in runs:
        tasks.extend(task for task in run.tasks if task not in tasks)
    for task in tasks:
        scores = [{g.group: g for g in group_scores(run.samples.get(task, []))} for run in runs]
        names = sorted(set().union(*scores))
        if not names:
            continue
        several = len(runs) > 1
        columns = ["group"]
        for run in runs:
            suffix = f" ({run.label})" if several else ""
            columns += [f"n{suffix}", f"accuracy{suffix}", f"95% CI{suffix}"]
        columns += [f"Δ {run.label}" for run in runs[1:]]
        table = Table(columns)
        for name in names:
            cells = [Cell(name, "group", name)]
            for position, by_group in enumerate(scores):
                score = by_group.get(name)
                run_field = f"run{position}."
                cells += [
                    Cell(str(score.n) if score else "–", run_field + "n", score.n if score else -1),
                    Cell(
                        fmt(score.accuracy if score else None),
                        run_field + "accuracy",
                        score.accuracy if score else -1,
                    ),
                    Cell(fmt_interval(score.ci95 if score else None), run_field + "ci95"),
                ]
            for position, by_group in enumerate(scores[1:], 1):
                first, this = scores[0].get(name), by_group.get(name)
                delta = this.accuracy - first.accuracy if first and this else None
                cells.append(Cell(fmt_signed(delta), f"delta{position}", delta if delta is not None else 0.0))
            table.rows.append((name, cells))
        tables.append((task, table))
    return tables
