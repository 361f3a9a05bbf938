"""Every exception chattasks raises on purpose, in one hierarchy.

    ChattasksError                      base of everything below
    ├── DataError                       a dataset could not be found or read
    │   ├── DatasetNotFound             (also LookupError) no such dataset/config/split where we looked
    │   └── InvalidConversation         (also ValueError) a conversation breaks the schema; names file:line
    ├── TaskError                       misuse of a task
    │   ├── UnknownTask                 (also KeyError) a name the registry does not hold
    │   └── TaskNotEvaluable            (also NotImplementedError) a training-only task was asked to grade
    ├── ToolError                       (also ValueError) the calculator refused an expression
    ├── SandboxError                    running untrusted code went wrong before the code itself did
    │   └── SandboxUnavailable          no isolation of the requested strength can be had here
    ├── BackendError                    a model backend failed (load, request, tokenizer)
    ├── SpecError                       (also ValueError) a mixture spec file is malformed; names file, table, key
    ├── RenderError                     (also ValueError) a conversation cannot be rendered with exact loss masks
    ├── RunDirError                     (also ValueError) a run directory cannot be used or resumed as asked
    └── ReportError                     (also ValueError) a contamination report is malformed or lacks a task

Errors raised for bad arguments keep the standard types (ValueError, IndexError, TypeError)
so that ordinary Python code handles them as it expects.
"""

from __future__ import annotations


class ChattasksError(Exception):
    """Base class of every error chattasks raises on purpose."""


class DataError(ChattasksError):
    """A dataset could not be found, read or understood."""


class DatasetNotFound(DataError, LookupError):
    """The dataset, config or split asked for is not where chattasks looked."""


class InvalidConversation(DataError, ValueError):
    """A conversation breaks the schema. The message names the source (file:line or row) and the fault.

    `problems` holds every fault found (a validator may collect several before raising).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


class TaskError(ChattasksError):
    """A task was used in a way it does not support."""


class UnknownTask(TaskError, KeyError):
    """The registry holds no task of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TaskNotEvaluable(TaskError, NotImplementedError):
    """A training-only task (SmolTalk, CustomJSON, ...) was asked to grade a response."""


class ToolError(ChattasksError, ValueError):
    """The calculator tool refused or failed to evaluate an expression."""


class SandboxError(ChattasksError):
    """The sandbox could not run a program (as opposed to the program failing)."""


class SandboxUnavailable(SandboxError):
    """No isolation of the requested strength is available on this machine."""


class BackendError(ChattasksError):
    """A model backend failed: loading, tokenising or talking to a server."""


class RunDirError(ChattasksError, ValueError):
    """A run directory cannot be used as asked (missing, holds another run, settings differ)."""


class SpecError(ChattasksError, ValueError):
    """A mixture spec is malformed: the message names the file, the table/key and what was expected."""


class RenderError(ChattasksError, ValueError):
    """A tokenizer or chat template cannot give exact loss masks (missing special tokens, unlocatable spans)."""


class ReportError(ChattasksError, ValueError):
    """A contamination report cannot be used: malformed (names the file and field) or missing the task asked for."""
