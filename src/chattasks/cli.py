"""The ``chattasks`` command (``chattasks --help``).

Tasks: ``list``, ``show``, ``validate``. Evaluation: ``eval``, ``regrade`` (``chattasks.eval.cli``).
Fine-tuning data: ``stats``, ``export``, ``check-template`` (``chattasks.sft.cli``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chattasks.contamination_cli import register as register_contamination_command
from chattasks.errors import ChattasksError
from chattasks.eval.cli import register as register_eval_commands
from chattasks.sft.cli import register as register_sft_commands

app = typer.Typer(
    help="Evaluation and fine-tuning tasks for chat language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional on Python 3.10
    typer.Option(
        "--data-dir", help="Local Hub-layout dataset folder (default: $CHATTASKS_DATA_DIR, else the Hub)."
    ),
]
ArgOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--arg", "-a", help="Task argument KEY=VALUE (VALUE read as JSON when it parses), repeatable."
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def parse_task_args(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into keyword arguments, reading each VALUE as JSON when it parses."""
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise fail(f"--arg {pair!r}: expected KEY=VALUE with KEY a Python identifier")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def build_task(name: str, args: dict[str, Any], data_dir: Path | None) -> Any:
    """Build the registered task ``name``, passing ``data_dir`` to tasks that load datasets."""
    import inspect

    from chattasks.registry import get_entry

    entry = get_entry(name)
    factory = entry.factory()
    if data_dir is not None and "data_dir" in inspect.signature(factory).parameters:
        args = {"data_dir": data_dir, **args}
    return entry.build(**args)


@app.command("list")
def list_tasks(data_dir: DataDirOption = None) -> None:
    """List the registered tasks with their eval type and number of rows."""
    from chattasks.registry import get_entry, task_names

    table = Table(title="chattasks tasks")
    for column in ("task", "type", "rows", "defaults", "description"):
        table.add_column(column, overflow="fold")
    for name in task_names():
        entry = get_entry(name)
        try:
            task = build_task(name, {}, data_dir)
            kind = task.eval_type if task.is_evaluable else "training"
            rows = f"{len(task):,}"
        except Exception as exc:  # one unbuildable task must not hide the others
            kind, rows = "?", f"[dim]unavailable: {type(exc).__name__}[/]"
        defaults = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
        table.add_row(name, kind, rows, defaults, entry.description)
    console.print(table)


def _render_content(content: Any) -> Text:
    if isinstance(content, str):
        return Text(content)
    text = Text()
    for part in content:
        kind = part.get("type")
        if kind == "python":
            text.append(f"<python> {part['text']} </python>", style="bold cyan")
        elif kind == "python_output":
            text.append(f"<output> {part['text']} </output>", style="bold green")
        else:
            text.append(part.get("text", ""))
    return text


@app.command("show")
def show(
    task_name: Annotated[
        str, typer.Argument(metavar="TASK", help="A registered task name (see `chattasks list`).")
    ],
    index: Annotated[int, typer.Argument(help="Row of the task to show (negative counts from the end).")] = 0,
    arg: ArgOption = None,
    data_dir: DataDirOption = None,
    raw: Annotated[bool, typer.Option("--json", help="Print the conversation as JSON.")] = False,
) -> None:
    """Pretty-print one conversation of a task, tool-call parts included."""
    try:
        task = build_task(task_name, parse_task_args(arg), data_dir)
        conversation = task[index]
    except IndexError as exc:
        raise fail(str(exc)) from None
    if raw:
        console.print_json(json.dumps(conversation, ensure_ascii=False))
        return
    console.print(f"[bold]{task_name}[/] row {index} of {len(task):,}")
    styles = {"system": "magenta", "user": "blue", "assistant": "green"}
    for message in conversation["messages"]:
        role = message["role"]
        console.print(
            Panel(
                _render_content(message["content"]),
                title=role,
                title_align="left",
                border_style=styles.get(role, "white"),
            )
        )
    for key, value in conversation.items():
        if key != "messages":
            shown = value if not isinstance(value, str) or len(value) < 400 else value[:400] + "…"
            console.print(f"[bold]{key}[/]: {shown}", highlight=False)


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.jsonl...", help="CustomJSON files to check.")],
) -> None:
    """Check CustomJSON conversation files; print every fault as file:line; exit 1 on any."""
    from chattasks.errors import InvalidConversation
    from chattasks.tasks.customjson import CustomJSON

    bad = 0
    for path in files:
        try:
            task = CustomJSON(path, max_errors=None)
        except FileNotFoundError as exc:
            err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
            bad += 1
            continue
        except InvalidConversation as exc:
            for problem in exc.problems:
                print(problem)
            bad += 1
            continue
        console.print(f"{path}: {len(task):,} conversations OK", highlight=False)
    if bad:
        raise typer.Exit(1)


register_eval_commands(app)  # chattasks eval, chattasks regrade
register_sft_commands(app)  # chattasks stats, export, check-template
register_contamination_command(app)  # chattasks contamination


def main() -> None:
    """Entry point of the ``chattasks`` console script: one-line errors, no tracebacks, for known faults."""
    try:
        app()
    except ChattasksError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except (ValueError, FileNotFoundError) as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
