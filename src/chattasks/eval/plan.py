"""What a run evaluates of one task: its rows, their fingerprint, samples per row and its scorer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from chattasks.errors import TaskError, TaskNotEvaluable
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.scorers import Question, Scorer, scorer_for
from chattasks.task import Conversation, Task


@dataclass(frozen=True)
class TaskPlan:
    """One task of a run: the rows it covers (the first ``limit`` of the task's view), their
    fingerprint, how many samples each row needs, and the scorer that grades them."""

    name: str
    task: Task
    eval_type: str
    conversations: list[Conversation]
    fingerprint: str
    num_samples: int
    scorer: Scorer
    excluded: frozenset[int] = frozenset()
    """Rows left out (``--exclude-contaminated``): not asked, not counted."""

    @property
    def n(self) -> int:
        """Rows of the task the run covers (the first ``limit``), excluded ones included."""
        return len(self.conversations)

    @property
    def rows(self) -> list[int]:
        """The rows evaluated: the first ``n`` but the excluded ones."""
        return [i for i in range(self.n) if i not in self.excluded]

    def question(self, index: int) -> Question:
        """Row ``index`` as a scorer's question."""
        return Question(index, self.conversations[index])


def fingerprint(conversations: Iterable[Conversation]) -> str:
    """sha256 of the conversations, each as canonical JSON (sorted keys, compact) plus a newline."""
    digest = hashlib.sha256()
    for conversation in conversations:
        line = json.dumps(
            conversation, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def plan_task(
    name: str,
    task: Task,
    limit: int | None,
    mc_scorer: str,
    generation: GenerationConfig,
    excluded: frozenset[int] = frozenset(),
) -> TaskPlan:
    """The plan of ``task`` in a run (``excluded`` rows left out); TaskNotEvaluable for a training-only task."""
    if not task.is_evaluable:
        raise TaskNotEvaluable(f"task {name!r} is training-only (it has no grader); it cannot be evaluated")
    eval_type = task.eval_type
    if eval_type not in ("categorical", "generative"):
        raise TaskError(f"task {name!r} has eval_type {eval_type!r}; expected 'categorical' or 'generative'")
    n = len(task) if limit is None else min(limit, len(task))
    conversations = [task[i] for i in range(n)]
    num_samples = generation.num_samples if eval_type == "generative" else 1
    scorer = scorer_for(task, eval_type, mc_scorer, generation)
    inside = frozenset(i for i in excluded if i < n)  # rows past the limit are not in the run anyway
    return TaskPlan(
        name, task, eval_type, conversations, fingerprint(conversations), num_samples, scorer, inside
    )
