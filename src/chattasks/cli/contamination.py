"""The ``chattasks contamination`` subcommand: which evaluation items a fine-tuning mixture contains.

The work is ``chattasks.contamination``'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from chattasks.cli.console import console, guarded

DEFAULT_N = 13  # chattasks.ngram_index.DEFAULT_N, not imported: the CLI loads without numpy

DEFAULT_AGAINST = "GSM8K,MMLU,ARC-Easy,ARC-Challenge,HumanEval"


@guarded
def contamination(
    spec: Annotated[
        Path, typer.Argument(metavar="SPEC", help="Mixture spec file (TOML), as for stats/export.")
    ],
    against: Annotated[
        str, typer.Option("--against", help="Comma-separated evaluation tasks (registry names).")
    ] = DEFAULT_AGAINST,
    n: Annotated[int, typer.Option("--n", min=1, help="Words per n-gram.")] = DEFAULT_N,
    max_items_per_gram: Annotated[
        Optional[int],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            "--max-items-per-gram",
            min=1,
            help="Ignore n-grams shared by more evaluation items than this (template text). Default: keep all.",
        ),
    ] = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Matches to show per task.")] = 3,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out",
            "-o",
            help="Write the report (JSON) here: per task, every contaminated row and its first match.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--data-dir", help="Local Hub-layout dataset folder for the mixture's and evaluation tasks."
        ),
    ] = None,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--progress/--no-progress", help="Progress bar (default: on for big mixtures)."),
    ] = None,
) -> None:
    """Count the evaluation items that share a word n-gram with a mixture's conversations."""
    from chattasks.cli.sft import progress_bar
    from chattasks.contamination import check_contamination
    from chattasks.sft.spec import load_spec

    names = [name.strip() for name in against.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("expected at least one task name", param_hint="--against")
    mixture = load_spec(spec).build(data_dir)
    rows = sum(len(e.task) if e.passes[0] else e.passes[1] for e in mixture.entries)
    with progress_bar(rows, "scanning", progress) as advance:
        report = check_contamination(
            mixture,
            names,
            n=n,
            data_dir=data_dir,
            max_items_per_gram=max_items_per_gram,
            spec=str(spec),
            progress=advance,
        )
    if out is not None:
        report.to_json(out)
    if as_json:
        print(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
        return
    table = Table(
        title=f"{spec.name}: {report.conversations:,} conversations against {len(names)} tasks, n={n}"
    )
    for column in ("task", "items", "contaminated", "%", "short items"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task in report.tasks:
        table.add_row(
            task.task,
            f"{task.items:,}",
            f"{task.contaminated:,}",
            f"{task.fraction:.1%}",
            f"{task.short_items:,}",
        )
    console.print(table)
    for task in report.tasks:
        for match in task.matches[:sample]:
            console.print(
                f"[bold]{escape(task.task)}[/] item {match.item} <- {escape(match.source)} row {match.row}: "
                f"[dim]{match.ngram!r}[/]",
                highlight=False,
                soft_wrap=True,
            )
    if out is not None:
        console.print(f"report written to {out}", highlight=False)
