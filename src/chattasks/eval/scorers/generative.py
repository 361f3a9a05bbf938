"""Generative tasks (GSM8K, SpellingBee, ...): the ``generate`` scorer.

``backend.generate`` gives ``num_samples`` replies per question; each is read (``reading``: the
reasoning split off, a server's reasoning folded in, truncation inside the reasoning told apart)
and its answer graded by the task's ``evaluate``, the task's ``extract`` telling an extraction
failure (None: ``no_answer``) from a wrong answer. A reply cut off inside its reasoning is the
failure ``truncated_in_reasoning`` and scores 0. Records carry their sample number.

Tools: with ``tools="auto"`` the backend is offered the calculator for a task whose training
data calls it (``Task.tools``) and takes it when the model can call tools; ``calculator`` offers
it on every generative task; the tool offered is kept in each record's details.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from chattasks.errors import BackendError
from chattasks.eval.backends.base import Backend, Completion, GenerationConfig
from chattasks.eval.record import Failure, Method, SampleRecord
from chattasks.eval.scorers.base import (
    Batch,
    Question,
    as_text,
    backend_name,
    check_count,
    make_record,
    owner_of,
    prompt_of,
    regraded,
)
from chattasks.eval.scorers.reading import Reading, read_record, read_reply, run_tags
from chattasks.task import Task

RawReply = tuple[Question, int, str | Completion]
"""A question, the sample number and the backend's reply."""
Reply = tuple[Question, int, Reading]
"""A question, the sample number and its reply as read for grading."""


def checked_reply(backend: Backend, reply: object) -> str | Completion:
    """``reply`` when it is a string or a ``Completion``; BackendError otherwise."""
    return reply if isinstance(reply, Completion) else as_text(backend, reply)


def tools_for(setting: str, task: Task) -> str:
    """The tools setting a backend gets for ``task``: ``auto`` only where the task's training data
    calls the calculator (``Task.tools``), else ``none``; an explicit setting unchanged."""
    if setting != "auto":
        return setting
    return "auto" if "calculator" in task.tools else "none"


def generate_replies(backend: Backend, batch: Batch, config: GenerationConfig) -> list[RawReply]:
    """``config.num_samples`` replies per question of ``batch``, checked and flattened in order."""
    replies = backend.generate([prompt_of(q.conversation) for q in batch.questions], config)
    check_count(backend, "generate", replies, len(batch.questions))
    flat: list[RawReply] = []
    for question, samples in zip(batch.questions, replies):
        if len(samples) != config.num_samples:
            raise BackendError(
                f"backend {backend_name(backend)!r} returned {len(samples)} samples, "
                f"expected num_samples={config.num_samples}"
            )
        flat.extend((question, number, checked_reply(backend, reply)) for number, reply in enumerate(samples))
    return flat


def generate_readings(backend: Backend, task: Task, batch: Batch, config: GenerationConfig) -> list[Reply]:
    """The replies of ``batch`` (tools offered as ``tools_for`` says), read for grading."""
    asked = dataclasses.replace(config, tools=tools_for(config.tools, task))
    tags = run_tags(config.reasoning_tags, backend)
    return [
        (question, number, read_reply(reply, tags, config.max_new_tokens, config.reasoning_tags))
        for question, number, reply in generate_replies(backend, batch, asked)
    ]


def reread(config: GenerationConfig, graded: Sequence[tuple[Question, SampleRecord]]) -> list[Reply]:
    """Journaled replies read again for re-grading."""
    return [
        (question, record.sample, read_record(record, config.reasoning_tags, config.max_new_tokens))
        for question, record in graded
    ]


class GenerativeScorer:
    """Free replies graded by the task's ``evaluate``, extraction failures counted apart."""

    name = "generate"

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config

    def check(self, task: Task, question: Question) -> None:
        """Every generative question can be asked."""

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """Generate the samples of every question and grade each reply."""
        return self.grade(task, batch.task_name, generate_readings(backend, task, batch, self.config))

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """Grade each journaled reply again."""
        fresh = self.grade(task, graded[0][1].task if graded else "", reread(self.config, graded))
        return [regraded(record, new) for (_, record), new in zip(graded, fresh)]

    def grade(self, task: Task, batch_name: str, replies: Sequence[Reply]) -> list[SampleRecord]:
        """The records of ``replies``, graded by the task that owns each question."""
        records = []
        failure: Failure | None
        for question, sample, reading in replies:
            owner = owner_of(task, question.index)
            if reading.truncated_in_reasoning:
                extracted, score, failure = None, 0.0, Failure.TRUNCATED_IN_REASONING
            else:
                extracted = owner.extract(question.conversation, reading.answer)
                score = float(owner.evaluate(question.conversation, reading.answer))
                failure = Failure.NO_ANSWER if extracted is None else None
            records.append(
                self.record_of(task, batch_name, question, sample, reading, extracted, score, failure)
            )
        return records

    @staticmethod
    def record_of(
        task: Task,
        batch_name: str,
        question: Question,
        sample: int,
        reading: Reading,
        extracted: str | None,
        score: float,
        failure: Failure | None,
        details: Mapping[str, object] | None = None,
    ) -> SampleRecord:
        """The record of one graded reply (``details`` added to what the reading keeps)."""
        return make_record(
            task,
            batch_name,
            question,
            response=reading.response,
            extracted=extracted,
            score=score,
            failure=failure,
            method=Method.GENERATE.value,
            sample=sample,
            details={**reading.details, **(details or {})},
            reply_fields=reading.record_fields(),
        )
