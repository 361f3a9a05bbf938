"""The scorer protocol: how one scoring method turns a backend's answers into sample records.

A scorer is chosen once per task (``chattasks.eval.scorers.scorer_for``) and does two things:

- ``score(backend, task, batch)``: ask the backend about a batch of questions and grade the
  answers, one ``SampleRecord`` per sample (timing and rank are the runner's to add);
- ``regrade(task, graded)``: grade journaled records again with the task's current grader,
  without calling a model (``chattasks regrade``). It takes a batch too, so that code is run in
  the sandbox in parallel.

This module also holds what every scorer shares: a ``Question`` (a row of a task's view),
``Batch``, the prompt and reference of a conversation, and the one function that makes a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError
from chattasks.eval.backends.base import Backend, Messages
from chattasks.eval.record import Failure, SampleRecord
from chattasks.task import Conversation, Task


@dataclass(frozen=True)
class Question:
    """Row ``index`` of a task's view and its conversation."""

    index: int
    conversation: Conversation


@dataclass(frozen=True)
class Batch:
    """Questions of one task (named as its journal names it) scored together."""

    task_name: str
    questions: Sequence[Question]


class Scorer(Protocol):
    """One way of scoring a task's questions (see the module docstring)."""

    name: str
    """The scorer's name as run.json records it (``letter``, ``loglik``, ``generate``, ...)."""

    def check(self, task: Task, question: Question) -> None:
        """Raise before any model call when ``task``'s rows cannot be scored this way."""
        ...

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """Ask ``backend`` about every question of ``batch`` and grade the answers."""
        ...

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """The records graded again by the task's current grader (no model call), in order."""
        ...


def prompt_of(conversation: Conversation) -> Messages:
    """The chat prompt of a conversation: its messages without the final assistant message."""
    messages = conversation["messages"]
    if messages and messages[-1].get("role") == "assistant":
        return list(messages[:-1])
    return list(messages)


def reference_of(task: Task, conversation: Conversation) -> str:
    """The reference answer of a conversation, for people reading the journal: what the task's
    ``extract`` reads from its final assistant message (GSM8K's number), else that message's text."""
    content = conversation["messages"][-1]["content"]
    extracted = task.extract(conversation, content)
    return extracted if extracted is not None else assistant_text(content)


def make_record(
    task: Task,
    batch_name: str,
    question: Question,
    *,
    response: str,
    extracted: str | None,
    score: float,
    failure: Failure | None,
    method: str,
    sample: int = 0,
    letters: list[str] | None = None,
    score_norm: float | None = None,
    details: dict[str, Any] | None = None,
    reply_fields: dict[str, Any] | None = None,
) -> SampleRecord:
    """A graded sample of ``question`` (its prompt and reference filled in from the conversation);
    ``reply_fields``: what was read of a generated reply (``reading.Reading.record_fields``)."""
    return SampleRecord(
        task=batch_name,
        index=question.index,
        sample=sample,
        prompt=prompt_of(question.conversation),
        response=response,
        extracted=extracted,
        reference=reference_of(task.locate(question.index)[0], question.conversation),
        score=float(score),
        failure=failure,
        method=method,
        letters=letters,
        score_norm=score_norm,
        details=dict(details or {}),
        **(reply_fields or {}),
        group=group_of(question.conversation),
    )


def group_of(conversation: Conversation) -> str | None:
    """The group a conversation's row belongs to for per-group breakdowns: its ``subject`` (MMLU), else None."""
    subject = conversation.get("subject")
    return subject if isinstance(subject, str) and subject else None


def regraded(old: SampleRecord, new: SampleRecord) -> SampleRecord:
    """``new`` (a fresh grade of ``old``'s response) keeping what grading does not decide: the
    prompt that was sent, the timing and the writer."""
    return new.replace(prompt=old.prompt, time=old.time, rank=old.rank, finished=old.finished)


def owner_of(task: Task, index: int) -> Task:
    """The task that grades row ``index`` of ``task`` (the child of a mixture, else the task)."""
    return task.locate(index)[0]


def check_count(backend: Backend, what: str, results: Sequence[Any], expected: int) -> None:
    """BackendError when a backend call answered a different number of prompts than it was asked."""
    if len(results) != expected:
        raise BackendError(
            f"backend {backend_name(backend)!r}.{what} returned {len(results)} results for {expected} prompts"
        )


def as_text(backend: Backend, reply: Any) -> str:
    """``reply`` when it is a string; BackendError otherwise."""
    if not isinstance(reply, str):
        raise BackendError(
            f"backend {backend_name(backend)!r} returned a {type(reply).__name__} reply, expected str"
        )
    return reply


def backend_name(backend: Backend) -> str:
    """The backend's name for messages."""
    return str(backend.name)
