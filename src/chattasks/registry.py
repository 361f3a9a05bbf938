"""The task registry: user-facing names -> task classes with their default arguments.

Built-in tasks are listed in ``BUILTIN_TASKS`` as ``"module:Class"`` strings so that nothing
heavy is imported until a task is asked for; adding a built-in task is one new file plus one
line here. Users register their own with ``register_task``; the CLI, the evaluation runner
and the SFT tools all read this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chattasks.errors import UnknownTask
from chattasks.task import Task


@dataclass(frozen=True)
class TaskEntry:
    """One registered task: its name, how to build it, its default arguments and a description."""

    name: str
    target: str | Callable[..., Task]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def factory(self) -> Callable[..., Task]:
        """The class or function that builds the task (importing its module on first use)."""
        if callable(self.target):
            return self.target
        module, _, attribute = self.target.partition(":")
        factory: Callable[..., Task] = getattr(importlib.import_module(module), attribute)
        return factory

    def build(self, **overrides: Any) -> Task:
        """Build the task with its defaults, updated by ``overrides``."""
        return self.factory()(**{**self.defaults, **overrides})


_T = "chattasks.tasks."
BUILTIN_TASKS: list[TaskEntry] = [
    TaskEntry("ARC-Easy", _T + "arc:ARC", {"subset": "ARC-Easy", "split": "test"}, "AI2 ARC, easy set"),
    TaskEntry(
        "ARC-Challenge",
        _T + "arc:ARC",
        {"subset": "ARC-Challenge", "split": "test"},
        "AI2 ARC, challenge set",
    ),
    TaskEntry("MMLU", _T + "mmlu:MMLU", {"subset": "all", "split": "test"}, "57-subject multiple choice"),
    TaskEntry(
        "GSM8K",
        _T + "gsm8k:GSM8K",
        {"subset": "main", "split": "test"},
        "grade-school math with a calculator",
    ),
    TaskEntry("HumanEval", _T + "humaneval:HumanEval", {}, "Python functions run against tests in a sandbox"),
    TaskEntry(
        "SpellingBee",
        _T + "spellingbee:SpellingBee",
        {"size": 256, "split": "test"},
        "count a letter in a word",
    ),
    TaskEntry(
        "SimpleSpelling", _T + "spellingbee:SimpleSpelling", {"size": 256, "split": "test"}, "spell a word"
    ),
    TaskEntry("SmolTalk", _T + "smoltalk:SmolTalk", {"split": "test"}, "general chat (training only)"),
]

_registry: dict[str, TaskEntry] = {entry.name: entry for entry in BUILTIN_TASKS}


def register_task(
    name: str,
    target: str | Callable[..., Task],
    /,
    *,
    description: str = "",
    replace: bool = False,
    **defaults: Any,
) -> TaskEntry:
    """Register a task under ``name``; ``target`` is a Task class/factory or a ``"module:Class"`` string."""
    if name in _registry and not replace:
        raise ValueError(f"a task named {name!r} is already registered (pass replace=True to override it)")
    entry = TaskEntry(name, target, dict(defaults), description)
    _registry[name] = entry
    return entry


def unregister_task(name: str) -> None:
    """Remove ``name`` from the registry (UnknownTask if it is not there)."""
    _registry.pop(get_entry(name).name)


def task_names() -> list[str]:
    """Every registered task name, in registration order."""
    return list(_registry)


def get_entry(name: str) -> TaskEntry:
    """The registry entry for ``name`` (case-insensitive); UnknownTask lists the valid names."""
    entry = _registry.get(name)
    if entry is None:
        folded = {key.lower(): value for key, value in _registry.items()}
        entry = folded.get(name.lower())
    if entry is None:
        raise UnknownTask(f"unknown task {name!r}; registered tasks: {', '.join(_registry)}")
    return entry


def get_task(name: str, **overrides: Any) -> Task:
    """Build the registered task ``name`` with its default arguments updated by ``overrides``."""
    return get_entry(name).build(**overrides)
