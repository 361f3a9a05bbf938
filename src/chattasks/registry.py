"""The task registry: user-facing names -> task classes with their default arguments.

Built-in tasks are listed in ``BUILTIN_TASKS`` as ``"module:Class"`` strings so that nothing
heavy is imported until a task is asked for; adding a built-in task is one new file plus one
line here. Users register their own with ``register_task``. ``build_task`` is the one way to
build a task from a name (or a ``"module:Class"`` string): the CLI, the evaluation runner and
the SFT specs all call it. ``default_eval_tasks()`` is the evaluation set ``chattasks eval``
runs when no tasks are named (the entries marked ``default_eval``).
"""

from __future__ import annotations

import importlib
import inspect
import os
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
    default_eval: bool = False

    def factory(self) -> Callable[..., Task]:
        """The class or function that builds the task (importing its module on first use)."""
        return self.target if callable(self.target) else import_target(self.target)

    def build(self, data_dir: str | os.PathLike[str] | None = None, **overrides: Any) -> Task:
        """Build the task with its defaults, updated by ``overrides``; ``data_dir`` goes to tasks
        whose constructor takes one (those that load a dataset), unless ``overrides`` names one."""
        factory = self.factory()
        args = {**self.defaults, **overrides}
        if data_dir is not None and "data_dir" not in args and _takes_data_dir(factory):
            args["data_dir"] = data_dir
        return factory(**args)


def import_target(target: str) -> Callable[..., Task]:
    """The class or function a ``"module:Class"`` string names; UnknownTask when it cannot be imported."""
    module, sep, attribute = target.partition(":")
    if not sep or not module or not attribute:
        raise UnknownTask(f"{target!r} is not of the form 'module:Class'")
    try:
        factory: Callable[..., Task] = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownTask(f"cannot import task {target!r}: {exc}") from None
    return factory


def _takes_data_dir(factory: Callable[..., Task]) -> bool:
    try:
        return "data_dir" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


_T = "chattasks.tasks."
BUILTIN_TASKS: list[TaskEntry] = [
    TaskEntry("ARC-Easy", _T + "arc:ARC", {"subset": "ARC-Easy", "split": "test"}, "AI2 ARC, easy set", True),
    TaskEntry(
        "ARC-Challenge",
        _T + "arc:ARC",
        {"subset": "ARC-Challenge", "split": "test"},
        "AI2 ARC, challenge set",
        True,
    ),
    TaskEntry(
        "MMLU", _T + "mmlu:MMLU", {"subset": "all", "split": "test"}, "57-subject multiple choice", True
    ),
    TaskEntry(
        "GSM8K",
        _T + "gsm8k:GSM8K",
        {"subset": "main", "split": "test"},
        "grade-school math with a calculator",
        True,
    ),
    TaskEntry(
        "HumanEval", _T + "humaneval:HumanEval", {}, "Python functions run against tests in a sandbox", True
    ),
    TaskEntry(
        "SpellingBee",
        _T + "spellingbee:SpellingBee",
        {"size": 256, "split": "test"},
        "count a letter in a word",
        True,
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
    default_eval: bool = False,
    **defaults: Any,
) -> TaskEntry:
    """Register a task under ``name``; ``target`` is a Task class/factory or a ``"module:Class"`` string.

    ``default_eval=True`` adds it to the tasks ``chattasks eval`` runs when none are named.
    """
    if name in _registry and not replace:
        raise ValueError(f"a task named {name!r} is already registered (pass replace=True to override it)")
    entry = TaskEntry(name, target, dict(defaults), description, default_eval)
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


def default_eval_tasks() -> list[str]:
    """The tasks ``chattasks eval`` and ``evaluate_model`` run when none are named, in registry order."""
    return [name for name, entry in _registry.items() if entry.default_eval]


def get_task(name: str, **overrides: Any) -> Task:
    """Build the registered task ``name`` with its default arguments updated by ``overrides``."""
    return get_entry(name).build(**overrides)


def build_task(
    spec: str | Task, *, data_dir: str | os.PathLike[str] | None = None, **args: Any
) -> tuple[str, Task]:
    """A task and the name runs and reports give it, from a registry name, a ``"module:Class"``
    string (its own defaults only) or a Task object (named by its ``name`` attribute or class).

    ``data_dir`` and ``args`` are passed as ``TaskEntry.build`` passes them; a Task object is
    returned as it is (giving ``args`` with one is a TypeError).
    """
    if isinstance(spec, Task):
        if args:
            raise TypeError("task arguments apply to a task name, not to a Task object")
        name = getattr(spec, "name", None)
        return (name if isinstance(name, str) and name else type(spec).__name__), spec
    if not isinstance(spec, str):
        raise TypeError(f"a task must be a registered name or a Task, got {type(spec).__name__}")
    entry = get_entry(spec) if ":" not in spec else TaskEntry(spec, spec)
    return entry.name, entry.build(data_dir, **args)
