"""chattasks: evaluation and fine-tuning tasks for chat language models.

A faithful, faster and safer re-implementation of nanochat's ``tasks/``. Importing this
package is cheap: each name below is imported from its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ARC": "chattasks.tasks.arc",
    "BackendError": "chattasks.errors",
    "CallableBackend": "chattasks.eval.backends.callable",
    "ChattasksError": "chattasks.errors",
    "CustomJSON": "chattasks.tasks.customjson",
    "DataError": "chattasks.errors",
    "DatasetNotFound": "chattasks.errors",
    "EvalResults": "chattasks.eval.results",
    "Failure": "chattasks.eval.record",
    "GSM8K": "chattasks.tasks.gsm8k",
    "GenerationConfig": "chattasks.eval.backends.base",
    "IncomparableRuns": "chattasks.errors",
    "HumanEval": "chattasks.tasks.humaneval",
    "InvalidConversation": "chattasks.errors",
    "JournalVersionError": "chattasks.errors",
    "MMLU": "chattasks.tasks.mmlu",
    "MalformedReply": "chattasks.errors",
    "NotSupported": "chattasks.errors",
    "Rejected": "chattasks.errors",
    "RenderError": "chattasks.errors",
    "ReportError": "chattasks.errors",
    "Rows": "chattasks.data",
    "RunDirError": "chattasks.errors",
    "SampleRecord": "chattasks.eval.record",
    "SandboxError": "chattasks.errors",
    "SandboxUnavailable": "chattasks.errors",
    "SandboxWarning": "chattasks.errors",
    "ServerLost": "chattasks.errors",
    "SimpleSpelling": "chattasks.tasks.spellingbee",
    "SmolTalk": "chattasks.tasks.smoltalk",
    "SpecError": "chattasks.errors",
    "SpellingBee": "chattasks.tasks.spellingbee",
    "Task": "chattasks.task",
    "TaskError": "chattasks.errors",
    "TaskMixture": "chattasks.task",
    "TaskNotEvaluable": "chattasks.errors",
    "TaskNotSupported": "chattasks.errors",
    "TaskSequence": "chattasks.task",
    "ToolError": "chattasks.errors",
    "UnknownBackend": "chattasks.errors",
    "UnknownTask": "chattasks.errors",
    "build_task": "chattasks.registry",
    "compare_runs": "chattasks.eval.compare",
    "conversation_problems": "chattasks.conversation",
    "default_eval_tasks": "chattasks.registry",
    "evaluate_model": "chattasks.eval.runner",
    "get_task": "chattasks.registry",
    "load_rows": "chattasks.data",
    "register_task": "chattasks.registry",
    "regrade": "chattasks.eval.regrade",
    "render_mc": "chattasks.render",
    "task_names": "chattasks.registry",
    "validate_conversation": "chattasks.conversation",
    "validate_messages": "chattasks.conversation",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chattasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from chattasks.conversation import conversation_problems, validate_conversation, validate_messages
    from chattasks.data import Rows, load_rows
    from chattasks.errors import (
        BackendError,
        ChattasksError,
        DataError,
        DatasetNotFound,
        IncomparableRuns,
        InvalidConversation,
        JournalVersionError,
        MalformedReply,
        NotSupported,
        Rejected,
        RenderError,
        ReportError,
        RunDirError,
        SandboxError,
        SandboxUnavailable,
        SandboxWarning,
        ServerLost,
        SpecError,
        TaskError,
        TaskNotEvaluable,
        TaskNotSupported,
        ToolError,
        UnknownBackend,
        UnknownTask,
    )
    from chattasks.eval.backends.base import GenerationConfig
    from chattasks.eval.backends.callable import CallableBackend
    from chattasks.eval.compare import compare_runs
    from chattasks.eval.record import Failure, SampleRecord
    from chattasks.eval.regrade import regrade
    from chattasks.eval.results import EvalResults
    from chattasks.eval.runner import evaluate_model
    from chattasks.registry import build_task, default_eval_tasks, get_task, register_task, task_names
    from chattasks.render import render_mc
    from chattasks.task import Task, TaskMixture, TaskSequence
    from chattasks.tasks.arc import ARC
    from chattasks.tasks.customjson import CustomJSON
    from chattasks.tasks.gsm8k import GSM8K
    from chattasks.tasks.humaneval import HumanEval
    from chattasks.tasks.mmlu import MMLU
    from chattasks.tasks.smoltalk import SmolTalk
    from chattasks.tasks.spellingbee import SimpleSpelling, SpellingBee
