"""Writing the report: the template filled in, the page's style, script and data inlined.

The page (``templates/report.html.j2``) is one file: its CSS and JavaScript (``report.css``,
``report.js``, written for chattasks, no third-party code) are inlined, the samples are embedded
as JSON (``chattasks.report.payload``), the chart is inline SVG. Nothing is fetched when it opens.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chattasks.report.chart import accuracy_chart, run_colour
from chattasks.report.comparison import compare_report_runs, comparison_table
from chattasks.report.context import group_tables, header_rows, task_table
from chattasks.report.pairs import pair_runs
from chattasks.report.payload import embed_json, report_payload
from chattasks.report.runs import ReportRun, load_runs

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.html"


def default_output(paths: Sequence[str | os.PathLike[str]]) -> Path:
    """Where ``chattasks view`` writes by default: ``RUN/report.html`` for one run,
    ``FIRST_RUN/comparison.html`` for several."""
    return Path(paths[0]).expanduser() / (REPORT_FILE if len(paths) == 1 else COMPARISON_FILE)


def render_report(runs: Sequence[ReportRun]) -> str:
    """The report of ``runs`` (the first is the base of comparisons) as one HTML document."""
    import jinja2
    from markupsafe import Markup

    from chattasks.eval.settings import now, version

    pairs, notes = pair_runs(runs)
    compared = compare_report_runs(runs)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    models = {str((run.results.meta.get("model") or {}).get("model", "?")) for run in runs}
    context: dict[str, Any] = {
        "title": f"chattasks report: {', '.join(sorted(models))}",
        "runs": runs,
        "colours": [run_colour(position) for position in range(len(runs))],
        "header": header_rows(runs),
        "tables": [task_table(run) for run in runs],
        "chart": Markup(accuracy_chart(runs)),
        "groups": group_tables(runs),
        "comparison": comparison_table(runs, pairs, compared) if compared else None,
        "compared": compared,
        "notes": notes,
        "has_pairs": bool(pairs),
        "generated": now(),
        "version": version(),
        "style": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        "script": Markup((TEMPLATES / "report.js").read_text(encoding="utf-8")),
        "data": Markup(embed_json(report_payload(runs, pairs))),
    }
    return environment.get_template("report.html.j2").render(context)


def write_report(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of the run directories ``runs`` to ``out`` (default: ``default_output``),
    atomically; the path written. RunDirError for a directory without a finished run."""
    target = Path(out).expanduser() if out is not None else default_output(runs)
    html = render_report(load_runs(runs))
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%H%M%S%f")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{stamp}.tmp")
    try:
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
