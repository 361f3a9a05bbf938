"""Every exception chattasks raises on purpose, in one hierarchy.

    ChattasksError                      base of everything below
    ├── DataError                       a dataset could not be found or read
    │   ├── DatasetNotFound             (also LookupError) no such dataset/config/split where we looked
    │   └── InvalidConversation         (also ValueError) a conversation breaks the schema; names file:line
    ├── TaskError                       misuse of a task
    │   ├── UnknownTask                 (also KeyError) a name the registry does not hold
    │   ├── TaskNotEvaluable            (also NotImplementedError) a training-only task was asked to grade
    │   └── TaskNotSupported            (also NotImplementedError) the task lacks an ability a scorer needs
    ├── ToolError                       (also ValueError) the calculator refused an expression
    ├── SandboxError                    running untrusted code went wrong before the code itself did
    │   ├── SandboxUnavailable          no isolation of the requested strength can be had here
    │   └── ServerLost                  a sandbox fork server died or stopped answering
    ├── BackendError                    a model backend failed (load, request, tokenizer)
    │   ├── UnknownBackend              (also ValueError) a backend name that is not registered
    │   ├── NotSupported                this backend cannot answer this kind of request
    │   ├── Rejected                    a server refused a request with a non-retryable status
    │   └── MalformedReply              a server's 2xx reply lacks what the endpoint returns (retried)
    ├── SpecError                       (also ValueError) a mixture spec file is malformed; names file, table, key
    ├── RenderError                     (also ValueError) a conversation cannot be rendered with exact loss masks
    ├── RunDirError                     (also ValueError) a run directory cannot be used or resumed as asked
    │   ├── JournalVersionError         a journal line of a schema version this chattasks does not know
    │   └── IncomparableRuns            two runs evaluated different data for a task (compare); names it
    └── ReportError                     (also ValueError) a contamination report is malformed or lacks a task

Warnings: ``SandboxWarning`` (a ``UserWarning``) when untrusted code runs with weaker isolation
than bubblewrap.

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


class TaskNotSupported(TaskError, NotImplementedError):
    """The task lacks an ability a scorer needs (log-likelihood requests, running code)."""


class ToolError(ChattasksError, ValueError):
    """The calculator tool refused or failed to evaluate an expression."""


class SandboxError(ChattasksError):
    """The sandbox could not run a program (as opposed to the program failing)."""


class SandboxUnavailable(SandboxError):
    """No isolation of the requested strength is available on this machine."""


class ServerLost(SandboxError):
    """A sandbox fork server died or stopped answering; the program it was running has no result."""


class SandboxWarning(UserWarning):
    """Untrusted code is about to run with weaker isolation than bubblewrap (a warning, not an error)."""


class BackendError(ChattasksError):
    """A model backend failed: loading, tokenising or talking to a server."""


class UnknownBackend(BackendError, ValueError):
    """No backend is registered under that name."""


class NotSupported(BackendError):
    """This backend cannot answer this kind of request (e.g. no log-probabilities from the server)."""


class Rejected(BackendError):
    """The server answered a non-retryable status; ``status`` and ``server_message`` say which and why."""

    def __init__(self, message: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class MalformedReply(BackendError):
    """A server's 2xx body parsed as JSON but lacks what the endpoint always returns (the request is retried)."""


class RunDirError(ChattasksError, ValueError):
    """A run directory cannot be used as asked (missing, holds another run, settings differ)."""


class JournalVersionError(RunDirError):
    """A journal line has a schema version this chattasks does not know; names the file and line."""


class SpecError(ChattasksError, ValueError):
    """A mixture spec is malformed: the message names the file, the table/key and what was expected."""


class RenderError(ChattasksError, ValueError):
    """A tokenizer or chat template cannot give exact loss masks (missing special tokens, unlocatable spans)."""


class IncomparableRuns(RunDirError):
    """Two runs cannot be compared as asked: a task's data differ (``chattasks compare``); names the task."""


class ReportError(ChattasksError, ValueError):
    """A contamination report cannot be used: malformed (names the file and field) or missing the task asked for."""
