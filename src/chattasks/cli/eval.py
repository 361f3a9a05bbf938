"""``chattasks eval``: the evaluation runner on the command line.

Every option left out of ``chattasks eval --resume --output RUN_DIR`` is taken from the run's
run.json, so resuming a run needs nothing but its directory. The backend flags (``--dtype``,
``--base-url``, ...) are made from the backends' ``OPTIONS`` declarations: a flag the chosen
backend does not declare is a usage error. Errors and exit codes are ``cli.console``'s; an
interrupted run exits 130 and prints the command that continues it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from chattasks.cli.console import DataDirOption, ExitCode, console, err_console, guarded
from chattasks.eval.backends import BACKENDS, backend_options
from chattasks.eval.backends.base import BackendOption, GenerationConfig
from chattasks.eval.journal import RunDirectory
from chattasks.eval.reasoning import parse_tags
from chattasks.eval.settings import RunSettings

CLI_BACKENDS = [name for name in BACKENDS if name != "callable"]
"""The backends a command line can name (the callable backend evaluates a Python function)."""


def _parse_list(value: str, what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{what} {value!r}: expected a comma-separated list")
    return items


def _parse_ks(value: str) -> list[int]:
    try:
        ks = [int(item) for item in _parse_list(value, "--k")]
    except ValueError:
        raise ValueError(f"--k {value!r}: expected comma-separated integers such as 1,10") from None
    if any(k < 1 for k in ks):
        raise ValueError(f"--k {value!r}: every k must be >= 1")
    return ks


def declared_options() -> dict[str, BackendOption]:
    """Every option some backend declares, by keyword (the first declaration's type and flag; the
    helps of all backends declaring it joined)."""
    merged: dict[str, BackendOption] = {}
    for name in CLI_BACKENDS:
        for option in backend_options(name):
            seen = merged.get(option.name)
            if seen is None:
                merged[option.name] = option
            elif option.help not in seen.help:
                merged[option.name] = BackendOption(
                    seen.name,
                    seen.kind,
                    f"{seen.help} {option.help}",
                    seen.operational,
                    seen.repeatable,
                    seen.flag,
                )
    return merged


def _chosen_options(backend_name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The given backend options; one the chosen backend does not declare is a usage error."""
    declared = {option.name: option for option in backend_options(backend_name)}
    every = declared_options()
    for keyword in given:
        if keyword not in declared:
            flag = every[keyword].cli_flag if keyword in every else keyword
            raise ValueError(f"{flag} is not an option of the {backend_name!r} backend")
    return dict(given)


def _run(
    model: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            help="Model id or path (hf) or served model name (openai). Default: embedded SmolLM2-135M."
        ),
    ] = None,
    backend: Annotated[Optional[str], typer.Option(help="Backend: hf (default) or openai.")] = None,  # noqa: UP045
    tasks: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Comma-separated tasks (default: the registry's default evaluation set)."),
    ] = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate the first N rows of each task.")] = None,  # noqa: UP045
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Run directory (default: runs/<timestamp>)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --output; left-out options come from it.")
    ] = False,
    mc_scorer: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Multiple-choice scoring: letter (default), loglik or generate."),
    ] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature (0: greedy).")] = None,  # noqa: UP045
    top_k: Annotated[Optional[int], typer.Option(help="Sample among the k likeliest tokens.")] = None,  # noqa: UP045
    num_samples: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Samples per generative question (needs --temperature > 0); gives pass@k."),
    ] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="Longest generated reply in tokens.")] = None,  # noqa: UP045
    batch_size: Annotated[Optional[int], typer.Option(help="Questions per model call.")] = None,  # noqa: UP045
    k: Annotated[Optional[str], typer.Option("--k", help="pass@k values to report, e.g. 1,10.")] = None,  # noqa: UP045
    data_dir: DataDirOption = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed (default 42).")] = None,  # noqa: UP045
    exclude_contaminated: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="A report of chattasks contamination: leave each task's contaminated rows out."),
    ] = None,
    tools: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Tools during generation: calculator, none, or auto (default: the calculator on tasks "
            "whose training data calls it, GSM8K and SpellingBee, when the model can call tools)."
        ),
    ] = None,
    reasoning_tags: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Reasoning tag pairs split off before grading, OPEN,CLOSE;OPEN,CLOSE "
            "(default <think>,</think>, plus the pairs the chat template names)."
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write RUN_DIR/report.html (chattasks view) at the end."),
    ] = True,
    **backend_flags: Any,
) -> None:
    """Evaluate a chat model on tasks; print the results table and write RUN_DIR/results.json and report.html."""
    from chattasks.eval.runner import evaluate_model

    given = {key: value for key, value in backend_flags.items() if value not in (None, [])}
    run_dir, call = _plan_call(
        model=model,
        backend=backend,
        tasks=tasks,
        limit=limit,
        output=output,
        resume=resume,
        mc_scorer=mc_scorer,
        generation={
            "temperature": temperature,
            "top_k": top_k,
            "num_samples": num_samples,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "tools": tools,
            "reasoning_tags": parse_tags(reasoning_tags) if reasoning_tags is not None else None,
        },
        batch_size=batch_size,
        k=k,
        data_dir=data_dir,
        given=given,
        exclude_contaminated=exclude_contaminated,
    )
    hook = _distributed_hook(output)
    try:
        results = evaluate_model(**call, distributed=hook)
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted; finished samples are kept in {run_dir}. "
            f"Continue with: chattasks eval --resume --output {run_dir}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if hook is not None and hook.rank != 0:
        return  # rank 0 prints the results of the whole run
    console.print(results.table())
    if not results.complete:
        console.print("[yellow]some questions are not in the journal yet (other shards still running?)[/]")
    console.print(f"results: {run_dir / 'results.json'}", highlight=False, soft_wrap=True)
    if report:
        _write_report(run_dir)


def _write_report(run_dir: Path) -> None:
    """Write the run's report and print its path; a failure is only a warning (the results are written)."""
    from chattasks.errors import ChattasksError
    from chattasks.report import write_report

    try:
        path = write_report([run_dir])
    except (ChattasksError, ImportError, OSError, ValueError) as exc:
        err_console.print(f"warning: no report written: {exc}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(f"report: {path}", highlight=False, soft_wrap=True)


def eval_command() -> Callable[..., None]:
    """The ``eval`` command: ``_run`` with one flag per declared backend option."""
    hints = typing.get_type_hints(_run, include_extras=True)
    fixed = [
        parameter.replace(annotation=hints[parameter.name])
        for parameter in inspect.signature(_run).parameters.values()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    names = {
        parameter.name for parameter in fixed
    }  # --batch-size is the runner's, given to backends taking one
    flags = [_flag_parameter(option) for option in declared_options().values() if option.name not in names]
    signature = inspect.Signature([*fixed, *flags], return_annotation=None)

    @functools.wraps(_run)
    def command(**kwargs: Any) -> None:
        _run(**kwargs)

    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    del command.__wrapped__  # typer must read the signature above, not _run's
    return guarded(command)


def _flag_parameter(option: BackendOption) -> inspect.Parameter:
    kind: Any = list[option.kind] if option.repeatable else option.kind  # type: ignore[name-defined]
    annotation = Annotated[Optional[kind], typer.Option(option.cli_flag, help=option.help)]  # noqa: UP045
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _distributed_hook(output: Path | None) -> Any:
    """Under torchrun (``WORLD_SIZE`` > 1): the process group hook of ``chattasks.eval.distributed``."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    if output is None:
        raise ValueError("under torchrun every rank must share one run directory: pass --output RUN_DIR")
    return importlib.import_module("chattasks.eval.distributed").from_environment()


def _stored(output: Path | None) -> tuple[dict[str, Any], dict[str, Any], list[int], dict[str, Any]]:
    """(settings, backend options, ks, the paths it read) of the run to resume in ``output``."""
    if output is None:
        raise ValueError("--resume needs --output RUN_DIR (the run to continue)")
    run = RunDirectory(output).read_run()
    settings = run.get("settings", {})
    settings = {**settings, "generation": RunSettings.from_json(settings).generation.to_dict()}
    options = {**run.get("options", {}), **settings.get("backend_options", {})}
    paths = {key: Path(run[key]) for key in ("data_dir", "exclude_contaminated") if run.get(key)}
    return settings, options, list(run.get("ks") or []), paths


def _plan_call(
    *,
    model: str | None,
    backend: str | None,
    tasks: str | None,
    limit: int | None,
    output: Path | None,
    resume: bool,
    mc_scorer: str | None,
    generation: dict[str, Any],
    batch_size: int | None,
    k: str | None,
    data_dir: Path | None,
    given: dict[str, Any],
    exclude_contaminated: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The run directory and the keyword arguments of ``evaluate_model`` for a command line."""
    from chattasks.eval.runner import DEFAULT_BATCH_SIZE
    from chattasks.registry import default_eval_tasks, get_entry

    if tasks is not None:
        for name in _parse_list(tasks, "--tasks"):
            get_entry(name)  # an unknown name fails here, before any model loads
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    stored: dict[str, Any] = {}
    stored_options: dict[str, Any] = {}
    stored_ks: list[int] = []
    if resume:
        stored, stored_options, stored_ks, paths = _stored(output)
        data_dir = data_dir if data_dir is not None else paths.get("data_dir")
        exclude_contaminated = exclude_contaminated or paths.get("exclude_contaminated")
    run_dir = output if output is not None else Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    backend_name = backend or stored.get("backend") or "hf"
    decoding = dict(stored.get("generation") or {})
    decoding.update({key: value for key, value in generation.items() if value is not None})
    options = {**stored_options, **given}
    options.pop("batch_size", None)
    call: dict[str, Any] = {
        "model": model if model is not None else stored.get("model"),
        "tasks": _parse_list(tasks, "--tasks")
        if tasks is not None
        else stored.get("tasks") or default_eval_tasks(),
        "backend": backend_name,
        "limit": limit if limit is not None else stored.get("limit"),
        "output": run_dir,
        "resume": resume,
        "mc_scorer": mc_scorer or stored.get("mc_scorer") or "letter",
        "generation": GenerationConfig(**decoding),
        "batch_size": batch_size or DEFAULT_BATCH_SIZE,
        "ks": _parse_ks(k) if k is not None else stored_ks or [1],
        "data_dir": data_dir,
        "exclude_contaminated": exclude_contaminated,
        **_chosen_options(backend_name, options),
    }
    return run_dir, call
