"""The ``chattasks`` command: one typer app, one module per group of subcommands.

Tasks: ``list``, ``show``, ``validate`` (``cli.tasks``). Evaluation: ``eval`` (``cli.eval``),
``regrade`` (``cli.regrade``), ``compare`` (``cli.compare``), ``view`` (``cli.view``). Fine-tuning
data: ``stats``, ``export``, ``check-template`` (``cli.sft``), ``contamination`` (``cli.contamination``);
RL: ``reward`` (``cli.reward``). Every command prints errors and exits as ``cli.console`` documents.
Command modules import the library and ``cli.console``, never each other or this package.
"""

from __future__ import annotations

import typer

from chattasks.cli import compare as compare_commands
from chattasks.cli import contamination as contamination_commands
from chattasks.cli import eval as eval_commands
from chattasks.cli import regrade as regrade_commands
from chattasks.cli import reward as reward_commands
from chattasks.cli import sft as sft_commands
from chattasks.cli import tasks as task_commands
from chattasks.cli import view as view_commands
from chattasks.cli.console import ExitCode

app = typer.Typer(
    help="Evaluation and fine-tuning tasks for chat language models.\n\n"
    "Exit codes: 0 success, 1 error, 2 usage error, 3 a requested check failed, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("list")(task_commands.list_tasks)
app.command("show")(task_commands.show)
app.command("validate")(task_commands.validate)
app.command("eval")(eval_commands.eval_command())
app.command("regrade")(regrade_commands.regrade_command)
app.command("compare")(compare_commands.compare_command)
app.command("reward")(reward_commands.reward_command)
app.command("view")(view_commands.view_command)
app.command("stats")(sft_commands.stats)
app.command("export")(sft_commands.export)
app.command("check-template")(sft_commands.check_template)
app.command("contamination")(contamination_commands.contamination)

__all__ = ["ExitCode", "app", "main"]


def main() -> None:
    """Entry point of the ``chattasks`` console script."""
    app()
