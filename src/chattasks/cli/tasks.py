"""The task subcommands of ``chattasks``: ``list``, ``show`` and ``validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chattasks.cli.console import DataDirOption, ExitCode, console, err_console, fail, guarded

ArgOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--arg", "-a", help="Task argument KEY=VALUE (VALUE read as JSON when it parses), repeatable."
    ),
]


def parse_task_args(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into keyword arguments, reading each VALUE as JSON when it parses."""
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise fail(f"--arg {pair!r}: expected KEY=VALUE with KEY a Python identifier", ExitCode.USAGE)
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


@guarded
def list_tasks(data_dir: DataDirOption = None) -> None:
    """List the registered tasks with their eval type and number of rows."""
    from chattasks.registry import build_task, get_entry, task_names

    table = Table(title="chattasks tasks")
    for column in ("task", "type", "rows", "defaults", "description"):
        table.add_column(column, overflow="fold")
    for name in task_names():
        entry = get_entry(name)
        try:
            _, task = build_task(name, data_dir=data_dir)
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


@guarded
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
    from chattasks.registry import build_task

    try:
        _, task = build_task(task_name, data_dir=data_dir, **parse_task_args(arg))
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


@guarded
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
        raise typer.Exit(int(ExitCode.ERROR))
