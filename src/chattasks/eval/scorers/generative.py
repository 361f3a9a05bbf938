"""Generative tasks (GSM8K, SpellingBee, ...): the ``generate`` scorer.

``backend.generate`` gives ``num_samples`` replies per question; each is graded by the task's
``evaluate``, and the task's ``extract`` tells an extraction failure (None: ``no_answer``) from a
wrong answer. Records carry their sample number.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from chattasks.task import Task

Reply = tuple[Question, int, str]
"""A question, the sample number and the reply text."""


def reply_text(backend: Backend, reply: object) -> str:
    """The text of a backend's reply (a string or a ``Completion``); BackendError for anything else."""
    return reply.text if isinstance(reply, Completion) else as_text(backend, reply)


def generate_replies(backend: Backend, batch: Batch, config: GenerationConfig) -> list[Reply]:
    """``config.num_samples`` replies per question of ``batch``, checked and flattened in order."""
    replies = backend.generate([prompt_of(q.conversation) for q in batch.questions], config)
    check_count(backend, "generate", replies, len(batch.questions))
    flat: list[Reply] = []
    for question, samples in zip(batch.questions, replies):
        if len(samples) != config.num_samples:
            raise BackendError(
                f"backend {backend_name(backend)!r} returned {len(samples)} samples, "
                f"expected num_samples={config.num_samples}"
            )
        flat.extend((question, number, reply_text(backend, reply)) for number, reply in enumerate(samples))
    return flat


class GenerativeScorer:
    """Free replies graded by the task's ``evaluate``, extraction failures counted apart."""

    name = "generate"

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config

    def check(self, task: Task, question: Question) -> None:
        """Every generative question can be asked."""

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """Generate the samples of every question and grade each reply."""
        return self.grade(task, batch.task_name, generate_replies(backend, batch, self.config))

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """Grade each journaled reply again."""
        replies = [(question, record.sample, record.response) for question, record in graded]
        fresh = self.grade(task, graded[0][1].task if graded else "", replies)
        return [regraded(record, new) for (_, record), new in zip(graded, fresh)]

    def grade(self, task: Task, batch_name: str, replies: Sequence[Reply]) -> list[SampleRecord]:
        """The records of ``replies``, graded by the task that owns each question."""
        records = []
        for question, sample, reply in replies:
            owner = owner_of(task, question.index)
            extracted = owner.extract(question.conversation, reply)
            records.append(
                make_record(
                    task,
                    batch_name,
                    question,
                    response=reply,
                    extracted=extracted,
                    score=float(owner.evaluate(question.conversation, reply)),
                    failure=Failure.NO_ANSWER if extracted is None else None,
                    method=Method.GENERATE.value,
                    sample=sample,
                )
            )
        return records
