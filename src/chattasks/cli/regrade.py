"""``chattasks regrade``: every journaled response of a run graded again by the current graders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from chattasks.cli.console import console, guarded


@guarded
def regrade_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by chattasks eval.")
    ],
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(help="Local Hub-layout dataset folder (default: the run's, else $CHATTASKS_DATA_DIR)."),
    ] = None,
) -> None:
    """Re-grade every journaled response with the current graders (no generation); rewrite results.json."""
    from chattasks.eval.regrade import regrade

    results = regrade(run_dir, data_dir=data_dir)
    console.print(results.table())
    console.print(f"results: {Path(run_dir) / 'results.json'}", highlight=False, soft_wrap=True)
