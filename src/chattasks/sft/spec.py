"""Mixture spec files: a small TOML file naming the tasks of an SFT mixture.

nanochat's SFT mixture, as a spec::

    seed = 42              # TaskMixture's shuffle seed (default 42)
    order = "mixture"      # "mixture": shuffle all rows together; "sequence": tasks in order (curriculum)

    [[tasks]]
    task = "SmolTalk"                      # a registry name (``chattasks list``) or "module:Class"
    args = { split = "train" }             # keyword arguments of the task

    [[tasks]]
    customjson = "identity_conversations.jsonl"   # shorthand for the CustomJSON task on that file
    repeat = 2                                    # nanochat's "list it twice"

    [[tasks]]
    task = "GSM8K"
    args = { subset = "main", split = "train" }
    repeat = 4

Each task takes ``repeat`` (an integer >= 1, default 1: every row that many times) or
``proportion`` (its share of the mixture's rows, 0 < p <= 1), and an optional ``label`` (default
the task name, numbered when repeated: ``GSM8K #2``). With proportions, the mixture's size is

- ``R / (1 - P)`` when other tasks use ``repeat`` (``R`` their rows, ``P`` the proportions' sum < 1);
- else ``size`` when given (top-level key; the proportions must then sum to 1);
- else the largest size in which no row repeats: ``min(rows_i / p_i)`` (proportions summing to 1).

A task given ``proportion`` contributes ``round(p * size)`` rows: whole passes over its rows, then
its first rows (its own order: use ``start``/``stop``/``step`` in ``args`` to choose others).

Relative paths (``customjson``, and string ``args`` whose key ends in ``path`` or ``dir``) are
relative to the spec file. Every fault raises ``SpecError`` naming the file, the table and key,
and what was expected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chattasks.errors import SpecError, UnknownTask
from chattasks.registry import build_task
from chattasks.task import Task, TaskMixture, TaskSequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ORDERS = ("mixture", "sequence")
_TOP_KEYS = ("seed", "order", "size", "tasks")
_TASK_KEYS = ("task", "customjson", "args", "repeat", "proportion", "label")
_CUSTOMJSON = "chattasks.tasks.customjson:CustomJSON"


@dataclass(frozen=True)
class TaskSpec:
    """One ``[[tasks]]`` table: what to build and how much of it the mixture takes."""

    task: str
    args: dict[str, Any] = field(default_factory=dict)
    repeat: int | None = None
    proportion: float | None = None
    label: str = ""

    def build(self, data_dir: str | os.PathLike[str] | None = None) -> Task:
        """The task (``data_dir`` is passed to tasks that load datasets, unless ``args`` gives one)."""
        _, task = build_task(self.task, data_dir=data_dir, **self.args)
        if not isinstance(task, Task):
            raise TypeError(f"{self.task} built a {type(task).__name__}, not a Task")
        return task


@dataclass
class MixtureEntry:
    """A built task of the mixture and how many of the mixture's rows come from it."""

    spec: TaskSpec
    task: Task
    rows: int

    @property
    def passes(self) -> tuple[int, int]:
        """(whole passes over the task, rows of the partial pass that follows)."""
        size = len(self.task)
        return divmod(self.rows, size) if size else (0, 0)


@dataclass
class Mixture:
    """A built spec: the mixture task and, per ``[[tasks]]`` entry, its task and row count."""

    spec: MixtureSpec
    entries: list[MixtureEntry]
    task: Task
    labels: dict[int, str] = field(default_factory=dict, repr=False)  # id(child task) -> entry label

    def __len__(self) -> int:
        return len(self.task)

    def label_of(self, index: int) -> str:
        """The label of the ``[[tasks]]`` entry that row ``index`` of the mixture comes from."""
        owner, _ = self.task.locate(index)
        return self.labels.get(id(owner), type(owner).__name__)


@dataclass(frozen=True)
class MixtureSpec:
    """A parsed spec file (see the module docstring); ``build()`` makes the mixture."""

    tasks: tuple[TaskSpec, ...]
    seed: int = 42
    order: str = "mixture"
    size: int | None = None
    source: str = "<spec>"

    def _fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {where}: {message}")

    def build(self, data_dir: str | os.PathLike[str] | None = None) -> Mixture:
        """Build every task and the mixture (TaskMixture with ``seed``, or TaskSequence)."""
        built: list[Task] = []
        for number, spec in enumerate(self.tasks, start=1):
            where = f"[[tasks]] #{number} ({spec.label})"
            try:
                built.append(spec.build(data_dir))
            except UnknownTask as exc:
                raise self._fail(where, f"key 'task': {exc}") from exc
            except (TypeError, ValueError) as exc:
                raise self._fail(where, f"cannot build {spec.task} with args {spec.args}: {exc}") from exc
        rows = self._rows(built)
        entries = [MixtureEntry(spec, task, count) for spec, task, count in zip(self.tasks, built, rows)]
        children: list[Task] = []
        labels: dict[int, str] = {}
        for entry in entries:
            full, rest = entry.passes
            parts = [entry.task] * full + ([entry.task[:rest]] if rest else [])
            labels.update((id(part), entry.spec.label) for part in parts)
            children.extend(parts)
        mixture: Task = (
            TaskMixture(children, seed=self.seed) if self.order == "mixture" else TaskSequence(children)
        )
        return Mixture(self, entries, mixture, labels)

    def _rows(self, built: list[Task]) -> list[int]:
        fixed = sum(
            len(task) * (spec.repeat or 1) for spec, task in zip(self.tasks, built) if spec.proportion is None
        )
        shares = [(spec, task) for spec, task in zip(self.tasks, built) if spec.proportion is not None]
        total_share = sum(spec.proportion or 0.0 for spec, _ in shares)
        size = 0.0
        if shares:
            for spec, task in shares:
                if len(task) == 0:
                    raise self._fail(f"[[tasks]] ({spec.label})", "key 'proportion': the task has no rows")
            if len(shares) < len(self.tasks):
                if total_share >= 1:
                    raise self._fail(
                        "[[tasks]]", f"proportions sum to {total_share:g}; expected < 1 beside repeat tasks"
                    )
                size = fixed / (1 - total_share)
            else:
                if abs(total_share - 1) > 1e-6:
                    raise self._fail("[[tasks]]", f"proportions sum to {total_share:g}; expected 1")
                size = (
                    self.size
                    if self.size is not None
                    else min(len(t) / (s.proportion or 1) for s, t in shares)
                )
        rows = []
        for spec, task in zip(self.tasks, built):
            if spec.proportion is None:
                rows.append(len(task) * (spec.repeat or 1))
                continue
            count = round(spec.proportion * size)
            if count == 0:
                raise self._fail(
                    f"[[tasks]] ({spec.label})",
                    f"key 'proportion': {spec.proportion:g} of {size:g} rows is 0 rows",
                )
            rows.append(count)
        return rows


def _resolve(value: Any, base: Path | None) -> Any:
    if base is None or not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def parse_spec(
    data: dict[str, Any], *, source: str = "<spec>", base_dir: str | os.PathLike[str] | None = None
) -> MixtureSpec:
    """A MixtureSpec from the parsed TOML ``data``; ``source`` names it in errors, ``base_dir`` anchors paths."""
    base = Path(base_dir) if base_dir is not None else None

    def fail(where: str, message: str) -> SpecError:
        return SpecError(f"{source}: {where}: {message}")

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(f"key {key!r}", f"unknown top-level key; expected one of {', '.join(_TOP_KEYS)}")
    seed = data.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("key 'seed'", f"expected an integer >= 0, got {seed!r}")
    order = data.get("order", "mixture")
    if order not in ORDERS:
        raise fail("key 'order'", f"expected one of {', '.join(repr(o) for o in ORDERS)}, got {order!r}")
    size = data.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise fail("key 'size'", f"expected an integer >= 1, got {size!r}")
    tables = data.get("tasks")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise fail("[[tasks]]", "expected at least one [[tasks]] table")
    specs = [_task_spec(table, f"[[tasks]] #{number}", base, fail) for number, table in enumerate(tables, 1)]
    seen: dict[str, int] = {}
    for position, (spec, table) in enumerate(zip(specs, tables)):
        if "label" not in table:  # a default label given twice is numbered
            seen[spec.label] = seen.get(spec.label, 0) + 1
            if seen[spec.label] > 1:
                specs[position] = replace(spec, label=f"{spec.label} #{seen[spec.label]}")
    if size is not None and any(spec.proportion is None for spec in specs):
        raise fail("key 'size'", "only allowed when every task has a 'proportion'")
    return MixtureSpec(tuple(specs), seed=seed, order=order, size=size, source=source)


def _task_spec(
    table: dict[str, Any], where: str, base: Path | None, fail: Callable[[str, str], SpecError]
) -> TaskSpec:
    """One ``[[tasks]]`` table checked and made a TaskSpec (its label not yet numbered)."""
    for key in table:
        if key not in _TASK_KEYS:
            raise fail(f"{where} key {key!r}", f"unknown key; expected one of {', '.join(_TASK_KEYS)}")
    if ("task" in table) == ("customjson" in table):
        raise fail(
            where,
            "expected exactly one of 'task' (a registry name or module:Class) and 'customjson' (a file)",
        )
    args = table.get("args", {})
    if not isinstance(args, dict):
        raise fail(f"{where} key 'args'", f"expected a table of task arguments, got {args!r}")
    args = {key: _resolve(v, base) if key.endswith(("path", "dir")) else v for key, v in args.items()}
    if "customjson" in table:
        filepath = table["customjson"]
        if not isinstance(filepath, str) or not filepath:
            raise fail(f"{where} key 'customjson'", f"expected a file path, got {filepath!r}")
        name, args = _CUSTOMJSON, {"filepath": _resolve(filepath, base), **args}
        default_label = Path(filepath).stem
    else:
        name = table["task"]
        if not isinstance(name, str) or not name:
            raise fail(f"{where} key 'task'", f"expected a task name, got {name!r}")
        default_label = name.rpartition(":")[2]
    if "repeat" in table and "proportion" in table:
        raise fail(where, "give either 'repeat' or 'proportion', not both")
    repeat = table.get("repeat")
    if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1):
        raise fail(f"{where} key 'repeat'", f"expected an integer >= 1, got {repeat!r}")
    proportion = table.get("proportion")
    if proportion is not None and (
        isinstance(proportion, bool) or not isinstance(proportion, int | float) or not 0 < proportion <= 1
    ):
        raise fail(f"{where} key 'proportion'", f"expected a number in (0, 1], got {proportion!r}")
    label = table.get("label", default_label)
    if not isinstance(label, str) or not label:
        raise fail(f"{where} key 'label'", f"expected a non-empty string, got {label!r}")
    return TaskSpec(name, args, repeat, None if proportion is None else float(proportion), label)


def load_spec(path: str | os.PathLike[str]) -> MixtureSpec:
    """Read a TOML mixture spec (FileNotFoundError if missing, SpecError if malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"mixture spec not found: {path}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    return parse_spec(data, source=str(path), base_dir=path.parent)
