"""The accuracy chart: one row per task, each run's accuracy as a dot on its 95% interval.

An inline SVG string (no script, no font fetched), drawn on a 0-1 accuracy axis with a tick at
the task's chance level; each run has its colour (``COLOURS``, repeated past six runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from chattasks.report.runs import ReportRun

COLOURS = ("#2f6fb3", "#d9822b", "#3a9a5b", "#b0413e", "#7b5ea7", "#8c6d31")
WIDTH, LABEL, RIGHT, LANE = 760, 170, 20, 14


def run_colour(position: int) -> str:
    """The colour of the run at ``position``."""
    return COLOURS[position % len(COLOURS)]


def accuracy_chart(runs: Sequence[ReportRun]) -> str:
    """The chart of every task of ``runs`` (tasks in first-seen order) as an SVG element."""
    tasks: list[str] = []
    for run in runs:
        tasks.extend(task for task in run.tasks if task not in tasks)
    row = LANE * len(runs) + 12
    top, plot = 24, WIDTH - LABEL - RIGHT
    height = top + row * len(tasks) + 8

    def x(value: float) -> float:
        return round(LABEL + value * plot, 1)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg"><title>Accuracy with 95% interval, per task</title>'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{x(tick)}" x2="{x(tick)}" y1="{top - 6}" y2="{height - 8}" class="grid"/>'
            f'<text x="{x(tick)}" y="{top - 10}" class="axis">{tick:g}</text>'
        )
    for number, task in enumerate(tasks):
        y0 = top + number * row
        parts.append(f'<text x="{LABEL - 8}" y="{y0 + row / 2 + 4}" class="label">{escape(task)}</text>')
        for position, run in enumerate(runs):
            result = run.results.tasks.get(task)
            if result is None or result.accuracy is None:
                continue
            y = y0 + 6 + position * LANE + LANE / 2
            low, high = result.ci95
            colour = run_colour(position)
            tip = f"{run.label}: {result.accuracy:.4f} ({low:.3f}–{high:.3f}), n={result.n}"
            parts.append(
                f"<g><title>{escape(tip)}</title>"
                f'<line x1="{x(result.chance)}" x2="{x(result.chance)}" y1="{y - 5}" y2="{y + 5}" class="chance"/>'
                f'<line x1="{x(low)}" x2="{x(high)}" y1="{y}" y2="{y}" stroke="{colour}" class="ci"/>'
                f'<circle cx="{x(result.accuracy)}" cy="{y}" r="4" fill="{colour}"/></g>'
            )
    parts.append("</svg>")
    return "".join(parts)
