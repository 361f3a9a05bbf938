"""``chattasks reward RUN``: the rewards a task gives a run's replies, beside the run's accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chattasks.cli.console import DataDirOption, console, guarded


@guarded
def reward_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by chattasks eval.")
    ],
    format_weight: Annotated[
        float, typer.Option("--format-weight", help="Weight of the answer-format shaping reward (0: none).")
    ] = 0.0,
    reasoning_weight: Annotated[
        float,
        typer.Option("--reasoning-weight", help="Weight of the closed-reasoning shaping reward (0: none)."),
    ] = 0.0,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Reward every journaled reply with its task (no model call): mean reward and its parts per task."""
    from rich.table import Table

    from chattasks.rl.report import run_rewards
    from chattasks.rl.reward import RewardShaping

    rows = run_rewards(
        run_dir,
        shaping=RewardShaping(answer_format=format_weight, reasoning_closed=reasoning_weight),
        data_dir=data_dir,
    )
    if as_json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return
    table = Table(title=f"rewards of {run_dir}", title_justify="left")
    for column in (
        "task",
        "samples",
        "mean score",
        "correct reward",
        "answer format",
        "reasoning closed",
        "total reward",
    ):
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in rows:
        table.add_row(
            row.task,
            f"{row.samples:,}",
            f"{row.mean_score:.4f}",
            f"{row.mean_correct:.4f}",
            f"{row.components['answer_format']:.4f}",
            f"{row.components['reasoning_closed']:.4f}",
            f"{row.mean_total:.4f}",
        )
    console.print(table)
