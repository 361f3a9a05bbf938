"""``chattasks view``: one self-contained HTML report of one or more runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from chattasks.cli.console import console, guarded


@guarded
def view_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...",
            help="Run directories written by chattasks eval; the first is the base of comparisons.",
        ),
    ],
    out: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            "--out",
            "-o",
            help="The HTML file to write (default: RUN_DIR/report.html; FIRST_RUN/comparison.html for several).",
        ),
    ] = None,
) -> None:
    """Write one HTML file showing the runs (results, subjects, samples; comparison and flipped
    questions for several runs) that opens from disk with nothing fetched; print its path."""
    from chattasks.report import write_report

    path = write_report(runs, out)
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False, soft_wrap=True)
