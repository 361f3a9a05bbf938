"""The SFT subcommands of ``chattasks``: ``stats``, ``export`` and ``check-template``.

Heavy imports happen inside each command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from chattasks.cli.console import ExitCode, console, err_console, guarded

SpecArgument = Annotated[Path, typer.Argument(metavar="SPEC", help="Mixture spec file (TOML).")]
DataDirOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional on Python 3.10
    typer.Option("--data-dir", help="Local Hub-layout dataset folder passed to dataset tasks."),
]
TemplateOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--chat-template", help="Jinja chat template (or a file holding one) replacing the tokenizer's."
    ),
]


@contextmanager
def progress_bar(
    total: int, description: str, enabled: bool | None
) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for ``total`` items (shown when ``enabled``, or when big if None)."""
    from chattasks.sft.stats import PROGRESS_THRESHOLD

    if enabled is False or (enabled is None and total < PROGRESS_THRESHOLD):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _renderer(tokenizer: str, chat_template: str | None, kind: str = "auto") -> Any:
    from chattasks.sft.render import make_renderer
    from chattasks.sft.special import SpecialTokenRenderer
    from chattasks.sft.template import ChatTemplateRenderer
    from chattasks.sft.tokenizer import load_tokenizer

    loaded = load_tokenizer(tokenizer, chat_template=chat_template)
    if kind == "special":
        return SpecialTokenRenderer(loaded)
    if kind == "template":
        return ChatTemplateRenderer(loaded)
    if kind != "auto":
        raise typer.BadParameter(f"--renderer must be auto, template or special; got {kind!r}")
    return make_renderer(loaded, **({"chat_template": loaded.chat_template} if chat_template else {}))


@guarded
def stats(
    spec: SpecArgument,
    tokenizer: Annotated[
        str,
        typer.Option(
            "--tokenizer", "-t", help="smollm2, a .gguf or tokenizer.json file, a folder or a Hub id."
        ),
    ],
    max_len: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-len", min=2, help="Count tokens after truncating each conversation to this length."
        ),
    ] = None,
    chat_template: TemplateOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--progress/--no-progress", help="Progress bar (default: on for big mixtures)."),
    ] = None,
) -> None:
    """Per task of a mixture: conversations, tokens, trained (assistant) tokens and their share."""
    from chattasks.sft.spec import load_spec
    from chattasks.sft.stats import mixture_stats, rows_to_measure

    mixture = load_spec(spec).build(data_dir)
    renderer = _renderer(tokenizer, chat_template)
    with progress_bar(rows_to_measure(mixture), "rendering", progress) as advance:
        result = mixture_stats(mixture, renderer, max_len=max_len, progress=advance)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    from rich import box

    table = Table(title=f"{spec.name}: {type(renderer).__name__}", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["task", "convs", "tokens", "trained", "share"]
    if max_len is not None:
        columns += ["trunc", "dropped"]
    widest = max(len(row.label) for row in [*result.tasks, result.total])
    for column in columns:
        if column == "task":
            table.add_column(column, min_width=widest, no_wrap=True)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    table.caption = "trained: tokens in the loss; share: of all trained tokens" + (
        f"; trunc: cut to {max_len}; dropped: nothing trained left" if max_len is not None else ""
    )
    for row in [*result.tasks, result.total]:
        cells = [
            row.label,
            f"{row.conversations:,}",
            f"{row.tokens:,}",
            f"{row.trained_tokens:,}",
            f"{row.share:.1%}",
        ]
        if max_len is not None:
            cells += [f"{row.truncated:,}", f"{row.dropped:,}"]
        table.add_row(*cells, style="bold" if row is result.total else None)
    console.print(table)


@guarded
def export(
    spec: SpecArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="jsonl (lossless) or parquet (TRL/datasets).")
    ] = "jsonl",
    shard_size: Annotated[
        int, typer.Option("--shard-size", min=1, help="Conversations per shard.")
    ] = 100_000,
    split: Annotated[str, typer.Option("--split", help="Split name in the file names.")] = "train",
    data_dir: DataDirOption = None,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--progress/--no-progress", help="Progress bar (default: on for big mixtures)."),
    ] = None,
) -> None:
    """Write a mixture as {"messages": [...]} shards (jsonl or parquet)."""
    from chattasks.sft.export import FORMATS
    from chattasks.sft.export import export as export_mixture
    from chattasks.sft.spec import load_spec

    if format not in FORMATS:
        raise typer.BadParameter(
            f"expected one of {', '.join(FORMATS)}, got {format!r}", param_hint="--format"
        )
    mixture = load_spec(spec).build(data_dir)
    with progress_bar(len(mixture), "exporting", progress) as advance:
        files = export_mixture(
            mixture, out, format=format, shard_size=shard_size, split=split, progress=advance
        )
    console.print(
        f"wrote {len(mixture):,} conversations to {len(files)} {format} file(s) in {out}", highlight=False
    )


def _tokens(renderer: Any, ids: Any, mask: Any) -> Text:
    text = Text()
    for token, trained in zip(ids.tolist(), mask.tolist()):
        text.append(renderer.decode([token]), style="green" if trained else "red")
    return text


@guarded
def check_template(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_OR_TOKENIZER",
            help="smollm2, a .gguf or tokenizer.json file, a folder or a Hub id.",
        ),
    ],
    chat_template: TemplateOption = None,
    renderer_kind: Annotated[
        str, typer.Option("--renderer", help="auto, template (chat template) or special (nanochat tokens).")
    ] = "auto",
    show: Annotated[
        bool, typer.Option("--show", help="Print every probe's tokens: green trained, red not.")
    ] = False,
) -> None:
    """Render probe conversations and report every token whose loss mask is wrong; exit 1 if any."""
    from chattasks.sft.check_template import check_template as run_check

    renderer = _renderer(model, chat_template, renderer_kind)
    report = run_check(renderer)
    table = Table(title=f"check-template {model} ({report.renderer})")
    for column in ("probe", "tokens", "trained", "wrong", "result"):
        table.add_column(column, justify="left" if column in ("probe", "result") else "right")
    for result in report.results:
        verdict = "[green]ok[/]" if result.ok else "[red]FAIL[/]"
        table.add_row(
            result.name, str(len(result.ids)), str(int(result.mask.sum())), str(len(result.wrong)), verdict
        )
    console.print(table)
    for result in report.results:
        for problem in result.problems:
            console.print(f"[red]{result.name}[/]: {problem}", highlight=False)
        for token in result.wrong[:20]:
            console.print(
                f"[red]{result.name}[/]: token {token.index} {token.token!r} has mask {token.got}, expected {token.expected}",
                highlight=False,
            )
        if len(result.wrong) > 20:
            console.print(f"[red]{result.name}[/]: ... and {len(result.wrong) - 20} more wrong tokens")
        if show or not result.ok and len(result.ids):
            console.print(f"[bold]{result.name}[/]:")
            console.print(_tokens(renderer, result.ids, result.mask))
    if not report.ok:
        raise typer.Exit(int(ExitCode.ERROR))
    console.print("all masks exact", style="green")
