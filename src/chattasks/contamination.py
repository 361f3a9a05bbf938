"""Contamination: which items of evaluation tasks share a word n-gram with a fine-tuning mixture.

    >>> from chattasks.contamination import check_contamination
    >>> from chattasks.sft import load_spec
    >>> report = check_contamination(load_spec("sft.toml").build(), ["GSM8K", "MMLU"])  # doctest: +SKIP
    >>> report.task("GSM8K").contaminated, report.contaminated("GSM8K")  # doctest: +SKIP
    >>> report.to_json("contamination.json")  # doctest: +SKIP

**What is compared.** Training side: every conversation of the mixture, each distinct row once
(a repeated task is read once), all its messages (system, user, assistant; assistant parts'
texts, tool calls and outputs included) joined by newlines, so a gram may span two messages.
Evaluation side, per item (row of the task as the registry builds it, e.g. the test split):

- multiple choice (a conversation with ``question`` and ``choices``: ARC, MMLU): the question and
  each choice; not the prompt's template words, letters or answer letter;
- every other task (GSM8K, HumanEval, ...): every message, i.e. the user prompt and the reference
  answer (GSM8K's worked solution; HumanEval's prompt and canonical solution).

Both sides are normalised and split into words as ``chattasks.ngrams`` describes (lower case,
NFKC, punctuation and whitespace folded). An item is **contaminated** when one of its word
n-grams (``n`` = 13 by default) occurs in a training conversation, or, for an item of fewer
than ``n`` words, when its whole text does (GPT-3's rule); an item without words never is.
Each contaminated item records the first training conversation (in the mixture's ``[[tasks]]``
order, then row order) that contains one of its grams, and the earliest such gram in it.

``max_items_per_gram`` leaves out grams shared by more evaluation items than that: template text
such as the preamble of MMLU's 895 moral-scenarios questions, which would otherwise mark all of
them as soon as one is in the training data (off by default, as GPT-3 and lm-eval count).

The evaluation side is hashed into an ``chattasks.ngram_index.NGramIndex`` (about 10 bytes per
gram); the training side is streamed in batches (read with a task's own ``conversation_texts()``
when it has one, as SmolTalk does), so memory is bounded by the evaluation tasks, not by the
mixture. The report (``to_json``/``from_json``, versioned) records per task the contaminated
rows, so an evaluation can leave them out: ``contaminated_indices(report, task)``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from chattasks.errors import ReportError
from chattasks.ngram_index import DEFAULT_N, NGramIndex
from chattasks.ngrams import BATCH_BYTES, WordBatch, conversation_text, fold
from chattasks.task import Conversation, Task

if TYPE_CHECKING:  # pragma: no cover
    from chattasks.sft.spec import Mixture

REPORT_VERSION = 1
NORMALIZATION = "nfkc-casefold-alnum-words/1"  # changes whenever chattasks.ngrams' rules change


def item_text(conversation: Conversation) -> str:
    """The text of an evaluation item that is checked (see the module docstring)."""
    if "question" in conversation and "choices" in conversation:
        return "\n".join([conversation["question"], *conversation["choices"]])
    return conversation_text(conversation)


@dataclass(frozen=True)
class Match:
    """A contaminated evaluation item and the first training conversation that shares a gram with it."""

    item: int  # row of the evaluation task
    source: str  # label of the training task (the spec's [[tasks]] label)
    row: int  # row of that training task (for CustomJSON: the row-th non-blank line)
    ngram: str  # the shared gram, normalised


@dataclass
class TaskReport:
    """One evaluation task: its items and, for each contaminated item, its first match."""

    task: str
    items: int
    matches: list[Match] = field(default_factory=list)  # ordered by item
    short_items: int = 0  # items of fewer than n words (checked by their whole text)
    empty_items: int = 0  # items without words (never contaminated)
    fingerprint: str = ""  # sha256 of the task's conversations, as chattasks eval's results.json has it

    @property
    def contaminated(self) -> int:
        """How many items share a gram with the training data."""
        return len(self.matches)

    @property
    def fraction(self) -> float:
        """The share of contaminated items (0 for a task without items)."""
        return self.contaminated / self.items if self.items else 0.0

    @property
    def indices(self) -> set[int]:
        """The rows of the contaminated items."""
        return {match.item for match in self.matches}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "items": self.items,
            "contaminated": self.contaminated,
            "short_items": self.short_items,
            "empty_items": self.empty_items,
            "fingerprint": self.fingerprint,
            "matches": [vars(match) for match in self.matches],
        }


@dataclass
class ContaminationReport:
    """The result of ``check_contamination``: settings, what was read, and one TaskReport per task."""

    n: int
    tasks: list[TaskReport]
    sources: dict[str, int]  # training label -> distinct rows read
    spec: str | None = None
    max_items_per_gram: int | None = None
    seconds: dict[str, float] = field(
        default_factory=dict
    )  # wall time of "index" (evaluation side) and "scan"
    normalization: str = NORMALIZATION
    version: int = REPORT_VERSION

    @property
    def conversations(self) -> int:
        """Training conversations read (each distinct row once)."""
        return sum(self.sources.values())

    def task(self, name: str) -> TaskReport:
        """The report of task ``name`` (ReportError, listing the tasks present, if absent)."""
        for report in self.tasks:
            if report.task == name:
                return report
        folded = [r for r in self.tasks if r.task.lower() == name.lower()]
        if folded:
            return folded[0]
        present = ", ".join(r.task for r in self.tasks) or "none"
        raise ReportError(f"the contamination report has no task {name!r}; it has: {present}")

    def contaminated(self, name: str) -> set[int]:
        """The rows of task ``name`` that are contaminated."""
        return self.task(name).indices

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the format ``from_dict`` reads)."""
        return {
            "version": self.version,
            "n": self.n,
            "normalization": self.normalization,
            "max_items_per_gram": self.max_items_per_gram,
            "spec": self.spec,
            "seconds": dict(self.seconds),
            "training": {"conversations": self.conversations, "sources": dict(self.sources)},
            "tasks": {report.task: report.to_dict() for report in self.tasks},
        }

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the report as JSON to ``path``."""
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False)
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<report>") -> ContaminationReport:
        """A report from ``to_dict``'s data; ReportError names ``source`` and the faulty field."""
        return _parse_report(data, source)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> ContaminationReport:
        """Read a report written by ``to_json`` (FileNotFoundError, or ReportError if malformed)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"contamination report not found: {path}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}: invalid JSON: {exc}") from None
        return _parse_report(data, str(path))


def contaminated_indices(report: ContaminationReport | str | os.PathLike[str], task: str) -> set[int]:
    """The contaminated rows of ``task`` in a report (an object or a REPORT.json path)."""
    if not isinstance(report, ContaminationReport):
        report = ContaminationReport.from_json(report)
    return report.contaminated(task)


def _parse_report(data: Any, source: str) -> ContaminationReport:
    def need(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = mapping.get(key) if isinstance(mapping, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ReportError(f"{source}: {where}{key}: expected {expected}, got {value!r}")
        return value

    version = need(data, "version", int, "")
    if version != REPORT_VERSION:
        raise ReportError(f"{source}: version: expected {REPORT_VERSION}, got {version}")
    training = need(data, "training", dict, "")
    sources = need(training, "sources", dict, "training.")
    tasks = []
    for name, entry in need(data, "tasks", dict, "").items():
        where = f"tasks.{name}."
        matches = []
        for number, match in enumerate(need(entry, "matches", list, where)):
            at = f"{where}matches[{number}]."
            matches.append(
                Match(
                    need(match, "item", int, at),
                    need(match, "source", str, at),
                    need(match, "row", int, at),
                    need(match, "ngram", str, at),
                )
            )
        report = TaskReport(
            name,
            need(entry, "items", int, where),
            matches,
            need(entry, "short_items", int, where),
            need(entry, "empty_items", int, where),
            need(entry, "fingerprint", str, where),
        )
        if need(entry, "contaminated", int, where) != len(matches):
            raise ReportError(
                f"{source}: {where}contaminated: {entry['contaminated']} but {len(matches)} matches"
            )
        tasks.append(report)
    return ContaminationReport(
        n=need(data, "n", int, ""),
        tasks=tasks,
        sources={str(k): int(v) for k, v in sources.items()},
        spec=data.get("spec"),
        max_items_per_gram=data.get("max_items_per_gram"),
        seconds={str(k): float(v) for k, v in (data.get("seconds") or {}).items()},
        normalization=need(data, "normalization", str, ""),
        version=version,
    )


# ----- the check ------------------------------------------------------------------------------
Training = Union["Mixture", Task, Mapping[str, Task]]


def training_views(training: Training) -> list[tuple[str, Task]]:
    """(label, rows to read) of a mixture: each ``[[tasks]]`` entry's distinct rows, once."""
    if isinstance(training, Task):
        return [(type(training).__name__, training)]
    if isinstance(training, Mapping):
        return [(str(label), task) for label, task in training.items()]
    entries = getattr(training, "entries", None)
    if entries is None:
        raise TypeError(f"expected a Mixture, a Task or a mapping of Tasks, got {type(training).__name__}")
    views = []
    for entry in entries:
        full, rest = entry.passes
        views.append((entry.spec.label, entry.task if full else entry.task[:rest]))
    return views


def evaluation_tasks(
    against: Sequence[str | Task] | Mapping[str, Task], data_dir: str | os.PathLike[str] | None = None
) -> list[tuple[str, Task]]:
    """(name, task) of each evaluation task: registry names built with their defaults (and ``data_dir``)."""
    if isinstance(against, Mapping):
        return [(str(name), task) for name, task in against.items()]
    from chattasks.registry import get_entry

    tasks: dict[str, Task] = {}
    for spec in against:
        if isinstance(spec, Task):
            tasks[getattr(spec, "name", None) or type(spec).__name__] = spec
            continue
        entry = get_entry(spec)
        if entry.name in tasks:
            continue
        overrides = {}
        if data_dir is not None and "data_dir" in inspect.signature(entry.factory()).parameters:
            overrides["data_dir"] = data_dir
        tasks[entry.name] = entry.build(**overrides)
    return list(tasks.items())


def _fingerprinted_texts(task: Task, digest: Any) -> Iterable[str]:
    for conversation in task:
        line = json.dumps(
            conversation, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        digest.update(line.encode() + b"\n")
        yield item_text(conversation)


def check_contamination(
    training: Training,
    against: Sequence[str | Task] | Mapping[str, Task],
    *,
    n: int = DEFAULT_N,
    data_dir: str | os.PathLike[str] | None = None,
    max_items_per_gram: int | None = None,
    spec: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ContaminationReport:
    """Find the items of the ``against`` tasks that share an n-gram with ``training`` (module docstring).

    ``training``: a built mixture spec (``load_spec(path).build()``), a Task, or a mapping label ->
    Task. ``against``: registry names (built with their defaults and ``data_dir``), Task objects,
    or a mapping name -> Task. ``max_items_per_gram``: ignore grams shared by more evaluation items
    than that (template text); None (the default) keeps all. ``progress`` is called with the number
    of training rows read.
    """
    started = time.perf_counter()
    evaluation = evaluation_tasks(against, data_dir)
    digests = [hashlib.sha256() for _ in evaluation]
    texts = (
        text for (_, task), digest in zip(evaluation, digests) for text in _fingerprinted_texts(task, digest)
    )
    index = NGramIndex(texts, n, max_items_per_gram=max_items_per_gram)
    offsets = np.cumsum([0] + [len(task) for _, task in evaluation]).tolist()
    indexed = time.perf_counter()
    views = training_views(training)
    first = _scan(index, views, progress)
    seconds = {"index": indexed - started, "scan": time.perf_counter() - indexed}
    reports = []
    for number, (name, _) in enumerate(evaluation):
        low, high = offsets[number], offsets[number + 1]
        counts = index.word_counts[low:high]
        matches = [
            Match(item - low, label, row, gram)
            for item, (label, row, gram) in sorted(first.items())
            if low <= item < high
        ]
        reports.append(
            TaskReport(
                name,
                high - low,
                matches,
                short_items=int(((counts > 0) & (counts < n)).sum()),
                empty_items=int((counts == 0).sum()),
                fingerprint=digests[number].hexdigest(),
            )
        )
    sources: dict[str, int] = {}
    for label, view in views:
        sources[label] = sources.get(label, 0) + len(view)
    return ContaminationReport(
        n=n, tasks=reports, sources=sources, spec=spec, max_items_per_gram=max_items_per_gram, seconds=seconds
    )


def conversation_texts(task: Task) -> Iterator[str]:
    """The text of each conversation of ``task`` (``chattasks.ngrams.conversation_text``), in order.

    A task may read them faster itself: its ``conversation_texts()`` method is used when it has one.
    """
    own = getattr(task, "conversation_texts", None)
    if callable(own):
        yield from own()
    else:
        yield from map(conversation_text, task)


def _scan(
    index: NGramIndex, views: list[tuple[str, Task]], progress: Callable[[int], None] | None
) -> dict[int, tuple[str, int, str]]:
    """Stream the training rows; for each contaminated item, its first (label, row, gram)."""
    done = np.zeros(index.items, dtype=bool)
    first: dict[int, tuple[str, int, str]] = {}

    def flush(label: str, start: int, pending: list[bytes]) -> None:
        batch = WordBatch.from_folded(pending)
        for hit, gram in index.first_hits(batch, done):
            done[hit.item] = True
            first[hit.item] = (label, start + hit.text, gram.decode("utf-8"))
        if progress is not None:
            progress(len(pending))

    for label, view in views:
        pending: list[bytes] = []
        start = size = 0
        for row, text in enumerate(map(fold, conversation_texts(view))):
            pending.append(text)
            size += len(text) + 1
            if size >= BATCH_BYTES:
                flush(label, start, pending)
                pending, start, size = [], row + 1, 0
        if pending:
            flush(label, start, pending)
    return first
