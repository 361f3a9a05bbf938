"""Tasks: datasets of conversations with a grader, sliced as cheap views, mixed and sequenced.

``Task`` is the base class a task subclasses exactly as in nanochat: call
``super().__init__(**kwargs)`` first, load data afterwards, and override ``eval_type``,
``num_examples``, ``get_example`` and (for evaluation tasks) ``evaluate``.
``TaskMixture`` shuffles the rows of several tasks together; ``TaskSequence`` concatenates
them in order. Both are tasks themselves, so they slice, nest and grade like any other.
"""

from __future__ import annotations

import array
import bisect
import copy
import operator
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chattasks.errors import TaskError, TaskNotEvaluable, TaskNotSupported

if TYPE_CHECKING:
    from chattasks.sandbox.result import SandboxResult

Conversation = dict[str, Any]
_bisect_right = bisect.bisect_right  # a global name: one lookup less on the read path


@dataclass(frozen=True)
class LoglikRequest:
    """What log-likelihood scoring asks of one multiple-choice question: a plain-text context,
    one continuation per choice, and each choice's length in characters (acc_norm's divisor)."""

    context: str
    continuations: list[str]
    lengths: list[int]


def _as_int(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})") from None


class Task:
    """A lightweight logical view ``[start:stop:step]`` over a dataset of conversations.

    ``stop`` beyond the dataset is clamped to its size. ``len(task)`` counts rows in the view,
    ``num_examples()`` rows in the whole dataset; ``task[i]`` reads row ``i`` of the view and
    ``task[a:b:c]`` returns a new view over the same data (nothing is copied).
    """

    def __init__(self, start: int = 0, stop: int | None = None, step: int = 1) -> None:
        start = _as_int(start, "start")
        step = _as_int(step, "step")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        if stop is not None:
            stop = _as_int(stop, "stop")
            if stop < start:
                raise ValueError(f"stop must be >= start ({start}), got {stop}")
        self.start = start
        self.stop = stop
        self.step = step
        self._view: range | None = None  # set only by slices a start/stop/step cannot express

    # ----- what a subclass provides -------------------------------------------------------
    tools: tuple[str, ...] = ()
    """Tools the task's conversations call (``("calculator",)`` for GSM8K and SpellingBee): a run
    with ``--tools auto`` offers them to a model that can call tools."""

    @property
    def eval_type(self) -> str:
        """How the task is graded: 'categorical' (pick among letters) or 'generative' (free text)."""
        raise NotImplementedError(f"{type(self).__name__} does not define eval_type")

    def num_examples(self) -> int:
        """The number of rows in the underlying dataset, ignoring the view."""
        raise NotImplementedError(f"{type(self).__name__} does not define num_examples()")

    def get_example(self, index: int) -> Conversation:
        """The conversation at physical row ``index`` of the dataset."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_example()")

    def evaluate(self, conversation: Conversation, assistant_response: str) -> int | float:
        """Grade ``assistant_response`` to ``conversation``: 1 when correct, else 0."""
        raise TaskNotEvaluable(
            f"{type(self).__name__} is a training-only task: it has no grader (evaluate is not defined)"
        )

    def extract(self, conversation: Conversation, assistant_response: str) -> str | None:
        """The answer a response gives, or None when it gives none (an extraction failure, not a wrong answer).

        By default the stripped response, None when empty; tasks with a stricter notion override it.
        """
        answer = assistant_response.strip() if isinstance(assistant_response, str) else ""
        return answer or None

    def reward(self, conversation: Conversation, assistant_response: str) -> float:
        """A reward for an RL rollout; by default the grade as a float."""
        return float(self.evaluate(conversation, assistant_response))

    def loglik_request(self, conversation: Conversation) -> LoglikRequest:
        """The log-likelihood request of a multiple-choice conversation (the ``loglik`` scorer's input).

        Multiple-choice tasks define it; by default a task cannot be scored this way.
        """
        raise TaskNotSupported(
            f"{type(self).__name__} cannot be scored by log-likelihood (use --mc-scorer letter or generate)"
        )

    def run_many(
        self, conversations: Sequence[Conversation], assistant_responses: Sequence[Any]
    ) -> list[SandboxResult]:
        """Run each response's code against its conversation's tests, in parallel, in order.

        Tasks graded by running code (HumanEval) define it; ``runs_code`` says whether a task does.
        """
        raise TaskNotSupported(f"{type(self).__name__} does not grade by running code")

    # ----- derived behaviour ---------------------------------------------------------------
    @property
    def is_evaluable(self) -> bool:
        """Whether this task can grade responses (training-only tasks cannot)."""
        return type(self).evaluate is not Task.evaluate

    @property
    def runs_code(self) -> bool:
        """Whether this task grades by running code in the sandbox (it defines ``run_many``)."""
        return type(self).run_many is not Task.run_many

    def physical_rows(self) -> range:
        """The dataset rows this view covers, in view order."""
        if self._view is not None:
            return self._view
        total = self.num_examples()
        stop = total if self.stop is None else min(self.stop, total)
        return range(self.start, max(stop, self.start), self.step)

    def __len__(self) -> int:
        return len(self.physical_rows())

    def _physical_index(self, index: Any) -> int:
        i = index if type(index) is int else _as_int(index, "index")
        rows = self.physical_rows()
        try:
            return rows[i]
        except IndexError:
            raise IndexError(
                f"index {i} out of range for {type(self).__name__} of length {len(rows)}"
            ) from None

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._slice(index)
        return self.get_example(self._physical_index(index))

    def _slice(self, key: slice) -> Task:
        rows = self.physical_rows()[key]
        view = copy.copy(self)
        if rows.step > 0:
            view.start, view.stop, view.step, view._view = (
                rows.start,
                max(rows.stop, rows.start),
                rows.step,
                None,
            )
        else:
            view._view = rows
        return view

    def __iter__(self) -> Iterator[Conversation]:
        for physical in self.physical_rows():
            yield self.get_example(physical)

    def locate(self, index: int) -> tuple[Task, int]:
        """The task that holds row ``index`` of this view, and that row's physical index in it."""
        return self, self._physical_index(index)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} rows={len(self)}>"


class _RecentReads(deque[tuple[Conversation, Task]]):
    """The last ``maxlen`` (conversation, child that produced it) pairs a composite handed out.

    Appending is one C call, the cost the read path pays; finding an owner scans from the
    newest entry, which is where a conversation just read and now graded sits. Views of a
    composite share one memory; a pickled or deep-copied composite starts with an empty one.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), ((), self.maxlen)

    def owner(self, conversation: Conversation) -> Task | None:
        """The child that produced ``conversation``, or None when it was not handed out recently."""
        for seen, task in reversed(list(self)):  # a snapshot: another thread may be reading
            if seen is conversation:
                return task
        return None


def _reader(task: Task) -> tuple[Any, Sequence[int]]:
    """(read, rows) such that ``read(rows[i])`` is ``task[i]``, skipping ``Task.__getitem__``'s checks."""
    if type(task).__getitem__ in (Task.__getitem__, _CompositeTask.__getitem__):
        return task.get_example, task.physical_rows()
    return task.__getitem__, range(len(task))


class _CompositeTask(Task):
    """Shared machinery of mixtures and sequences: child tasks, owner lookup, grading by owner.

    The children's lengths (and views) are read once, at construction. A subclass sets
    ``_order`` (position ``p`` of the composite holds row ``_order[p]`` of the children's
    concatenation) and calls ``_index_rows()``.
    """

    _OWNER_MEMORY = 4096  # recent conversations whose owning child evaluate() can still find

    def __init__(self, tasks: Sequence[Task], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        tasks = list(tasks)
        for i, task in enumerate(tasks):
            if not isinstance(task, Task):
                raise TypeError(f"tasks[{i}] must be a Task, got {type(task).__name__}")
        self.tasks = tasks
        self.lengths = [len(task) for task in tasks]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        self.num_conversations = int(self.offsets[-1])
        self._bounds = [int(x) for x in self.offsets]  # a list: bisect on it beats numpy for a few tasks
        self._readers = [_reader(task) for task in tasks]
        self._recent = _RecentReads(maxlen=self._OWNER_MEMORY)
        self._order: Sequence[int] = range(self.num_conversations)
        self._rows: range = range(0)

    def _index_rows(self) -> None:
        self._rows = self.physical_rows()  # fixed: a composite's size never changes

    def num_examples(self) -> int:
        return self.num_conversations

    @property
    def eval_type(self) -> str:
        kinds = {task.eval_type for task in dict.fromkeys(self.tasks)}
        if len(kinds) != 1:
            raise TaskError(f"{type(self).__name__} mixes eval types {sorted(kinds)}; ask each task instead")
        return kinds.pop()

    def _child_of(self, position: int) -> tuple[int, int]:
        """Map a position in the concatenation of all children to (child number, row in child)."""
        child = _bisect_right(self._bounds, position) - 1
        return child, position - self._bounds[child]

    def _read(self, position: int) -> Conversation:
        """The conversation at ``position`` of the concatenation, its owner remembered."""
        child = _bisect_right(self._bounds, position) - 1
        read, rows = self._readers[child]
        conversation = read(rows[position - self._bounds[child]])
        self._recent.append((conversation, self.tasks[child]))
        return conversation

    def __getitem__(self, index: Any) -> Any:
        if type(index) is not int:  # slices, numpy integers, wrong types
            return super().__getitem__(index)
        try:
            position = self._order[self._rows[index]]
        except IndexError:
            raise IndexError(
                f"index {index} out of range for {type(self).__name__} of length {len(self._rows)}"
            ) from None
        # the hot path of reading a mixture row by row: _read(position), inlined (one call less)
        child = _bisect_right(self._bounds, position) - 1
        read, rows = self._readers[child]
        conversation = read(rows[position - self._bounds[child]])
        self._recent.append((conversation, self.tasks[child]))
        return conversation

    def _slice(self, key: slice) -> Task:
        view = super()._slice(key)
        if isinstance(view, _CompositeTask):  # always: a view is a copy of self
            view._index_rows()
        return view

    def get_example(self, index: int) -> Conversation:
        index = _as_int(index, "index")
        if not 0 <= index < self.num_conversations:
            raise IndexError(
                f"index {index} out of range for {type(self).__name__} of {self.num_conversations}"
            )
        return self._read(self._order[index])

    def locate(self, index: int) -> tuple[Task, int]:
        child, row = self._child_of(self._order[self._physical_index(index)])
        return self.tasks[child].locate(row)

    def evaluate(self, conversation: Conversation, assistant_response: str) -> int | float:
        """Grade with the task that produced ``conversation`` (one recently read from this task)."""
        owner = self._recent.owner(conversation)
        if owner is None:
            raise TaskError(
                f"{type(self).__name__}.evaluate: this conversation was not recently read from this task; "
                "use evaluate_at(index, response)"
            )
        return owner.evaluate(conversation, assistant_response)

    def evaluate_at(self, index: int, assistant_response: str) -> int | float:
        """Grade a response to row ``index`` of this view with the task that owns that row."""
        task, physical = self.locate(index)
        return task.evaluate(task.get_example(physical), assistant_response)


class TaskMixture(_CompositeTask):
    """All rows of ``tasks``, deterministically shuffled together (seed 42 by default).

    List a task more than once to oversample it; the same object is reused, never reloaded.
    Position ``i`` holds row ``order[i]`` of the tasks' concatenation, where ``order`` is
    ``numpy.random.default_rng(seed).permutation(n)``, kept as one compact array (4 bytes a row).
    """

    _order: array.array[int]
    _FILL_CHUNK = 1 << 16  # rows of np.arange written at a time: no second full-size array at build

    def __init__(self, tasks: Sequence[Task], seed: int = 42, **kwargs: Any) -> None:
        super().__init__(tasks, **kwargs)
        self.seed = seed
        n = self.num_conversations
        # an array.array, not numpy: indexing it gives a Python int with no numpy scalar in between
        typecode, self._dtype = ("I", np.uint32) if n < 2**32 else ("q", np.int64)
        self._order = order = array.array(typecode, [0]) * n
        numbers = np.frombuffer(order, dtype=self._dtype)  # a view: the permutation is written in place
        for start in range(0, n, self._FILL_CHUNK):
            stop = min(start + self._FILL_CHUNK, n)
            numbers[start:stop] = np.arange(start, stop, dtype=self._dtype)
        np.random.default_rng(seed).shuffle(numbers)
        self._index_rows()

    @property
    def order(self) -> np.ndarray:
        """The permutation as a numpy array (a view of the mixture's own index, nothing copied)."""
        return np.frombuffer(self._order, dtype=self._dtype)


class TaskSequence(_CompositeTask):
    """The rows of ``tasks`` concatenated in order, for curricula."""

    def __init__(self, tasks: Sequence[Task], **kwargs: Any) -> None:
        super().__init__(tasks, **kwargs)
        self._index_rows()
