"""Multiple choice answered by letter: the ``letter`` scorer and the ``generate`` scorer.

- ``LetterScorer`` (nanochat's way, the default): ``backend.letter_scores`` scores each of the
  row's letters as the first token of the assistant's reply; the best letter is the answer. A
  backend that cannot (``NotSupported``) is asked for a free reply instead (as
  ``ChoiceByGenerationScorer`` does) and the record's details say ``fallback_from: letter``.
- ``ChoiceByGenerationScorer``: the model answers freely (greedy, at most ``MC_MAX_NEW_TOKENS``
  tokens) and the letter is read by ``parse_letter`` from the reply's answer, never from its
  reasoning (``reading``); a reply cut off inside its reasoning is ``truncated_in_reasoning``.

Either way a chosen letter is graded by the task; no letter is the failure ``not_a_letter``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends.base import Backend, GenerationConfig, LetterScores
from chattasks.eval.reasoning import TagPair
from chattasks.eval.record import Failure, Method, SampleRecord, finite
from chattasks.eval.scorers.base import (
    Batch,
    Question,
    backend_name,
    check_count,
    make_record,
    owner_of,
    prompt_of,
    regraded,
)
from chattasks.eval.scorers.generative import checked_reply
from chattasks.eval.scorers.reading import Reading, read_record, read_reply, run_tags
from chattasks.task import Task
from chattasks.tasks.multiple_choice import letters_of, parse_letter

MC_MAX_NEW_TOKENS = 32
"""Tokens a model may write when answering a multiple-choice question freely (``generate``)."""


def grade_choice(
    task: Task,
    batch_name: str,
    question: Question,
    *,
    response: str,
    chosen: str | None,
    method: str,
    details: dict[str, Any],
    failure: Failure = Failure.NOT_A_LETTER,
    reply_fields: dict[str, Any] | None = None,
) -> SampleRecord:
    """The record of a multiple-choice answer: ``chosen`` (a letter of the question, or None: the
    ``failure``) graded."""
    letters = letters_of(question.conversation)
    chosen = chosen if chosen in letters else None
    owner = owner_of(task, question.index)
    score = float(owner.evaluate(question.conversation, chosen)) if chosen is not None else 0.0
    return make_record(
        task,
        batch_name,
        question,
        response=response,
        extracted=chosen,
        score=score,
        failure=None if chosen is not None else failure,
        method=method,
        letters=letters,
        details=details,
        reply_fields=reply_fields,
    )


class ChoiceByGenerationScorer:
    """Multiple choice by a free greedy reply, the letter parsed from it."""

    name = "generate"

    def __init__(self, seed: int = 42, reasoning_tags: tuple[TagPair, ...] | None = None) -> None:
        self.seed = seed
        self.reasoning_tags = reasoning_tags

    def check(self, task: Task, question: Question) -> None:
        """The question must carry its letters."""
        letters_of(question.conversation)

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """Ask for a short greedy reply per question and grade the letter it names."""
        config = GenerationConfig(
            max_new_tokens=MC_MAX_NEW_TOKENS, temperature=0.0, num_samples=1, seed=self.seed, tools="none"
        )
        replies = backend.generate([prompt_of(q.conversation) for q in batch.questions], config)
        check_count(backend, "generate", replies, len(batch.questions))
        tags = run_tags(self.reasoning_tags, backend)
        records = []
        for question, samples in zip(batch.questions, replies):
            if not samples:
                raise BackendError(f"backend {backend_name(backend)!r} returned no reply")
            reading = read_reply(
                checked_reply(backend, samples[0]), tags, MC_MAX_NEW_TOKENS, self.reasoning_tags
            )
            records.append(self._grade(task, batch.task_name, question, reading, {}))
        return records

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """Parse and grade each journaled reply again."""
        out = []
        for question, record in graded:
            reading = read_record(record, self.reasoning_tags, MC_MAX_NEW_TOKENS)
            out.append(regraded(record, self._grade(task, record.task, question, reading, record.details)))
        return out

    @staticmethod
    def _grade(
        task: Task, batch_name: str, question: Question, reading: Reading, details: dict[str, Any]
    ) -> SampleRecord:
        truncated = reading.truncated_in_reasoning
        chosen = None if truncated else parse_letter(reading.answer, letters_of(question.conversation))
        return grade_choice(
            task,
            batch_name,
            question,
            response=reading.response,
            chosen=chosen,
            method=Method.GENERATE.value,
            details={**details, **reading.details},
            failure=Failure.TRUNCATED_IN_REASONING if truncated else Failure.NOT_A_LETTER,
            reply_fields=reading.record_fields(),
        )


class LetterScorer:
    """Multiple choice by the scores of the letters as the reply's first token (nanochat's way)."""

    name = "letter"

    def __init__(self, seed: int = 42, reasoning_tags: tuple[TagPair, ...] | None = None) -> None:
        self.fallback = ChoiceByGenerationScorer(seed, reasoning_tags)

    def check(self, task: Task, question: Question) -> None:
        """The question must carry its letters."""
        letters_of(question.conversation)

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """Score every letter of every question; a backend without scores answers by generation."""
        prompts = [prompt_of(q.conversation) for q in batch.questions]
        letters = [letters_of(q.conversation) for q in batch.questions]
        try:
            results: list[LetterScores] = backend.letter_scores(prompts, letters)
        except NotSupported:
            return [
                record.replace(details={**record.details, "fallback_from": "letter"})
                for record in self.fallback.score(backend, task, batch)
            ]
        check_count(backend, "letter_scores", results, len(batch.questions))
        return [
            self._grade(task, batch.task_name, question, result.best(), result.method, result.scores)
            for question, result in zip(batch.questions, results)
        ]

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """Grade each journaled letter again (replies of the generation fallback are parsed again)."""
        out = []
        for question, record in graded:
            if record.method == Method.GENERATE.value:
                out.extend(self.fallback.regrade(task, [(question, record)]))
                continue
            scores = record.details.get("scores")
            out.append(
                regraded(
                    record,
                    self._grade(task, record.task, question, record.response or None, record.method, scores),
                )
            )
        return out

    @staticmethod
    def _grade(
        task: Task,
        batch_name: str,
        question: Question,
        letter: str | None,
        method: str,
        scores: dict[str, Any] | None,
    ) -> SampleRecord:
        return grade_choice(
            task,
            batch_name,
            question,
            response=letter or "",
            chosen=letter,
            method=method,
            details={"scores": finite(scores)} if scores is not None else {},
        )
