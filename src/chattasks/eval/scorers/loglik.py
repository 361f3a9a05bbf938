"""Multiple choice by log-likelihood (lm-eval's way): the ``loglik`` scorer.

Each choice is scored as a continuation of a plain-text context (``Task.loglik_request``: lm-eval's
ARC and MMLU formats) by ``backend.loglikelihoods``, one call per batch (the backend computes the
shared context once). ``score`` (acc) grades the argmax of the summed log-likelihoods,
``score_norm`` (acc_norm) the argmax of the sums divided by each choice's length in characters;
ties go to the first choice. The numbers compare with lm-eval's ``arc_easy``/``arc_challenge``/``mmlu``.
"""

from __future__ import annotations

from collections.abc import Sequence

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends.base import Backend
from chattasks.eval.record import Method, SampleRecord, finite
from chattasks.eval.scorers.base import (
    Batch,
    Question,
    backend_name,
    check_count,
    make_record,
    owner_of,
    regraded,
)
from chattasks.task import Task
from chattasks.tasks.multiple_choice import letters_of


def first_argmax(values: Sequence[float]) -> int:
    """The position of the largest value, the first one on ties."""
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


class LoglikScorer:
    """Multiple choice by each choice's log-likelihood; acc in ``score``, acc_norm in ``score_norm``."""

    name = "loglik"

    def check(self, task: Task, question: Question) -> None:
        """Fail early (before any model call) when the task's rows cannot be scored this way."""
        owner_of(task, question.index).loglik_request(question.conversation)

    def score(self, backend: Backend, task: Task, batch: Batch) -> list[SampleRecord]:
        """One ``loglikelihoods`` call for the batch, each question graded on its sums."""
        requests = [owner_of(task, q.index).loglik_request(q.conversation) for q in batch.questions]
        try:
            results = backend.loglikelihoods(
                [request.context for request in requests], [request.continuations for request in requests]
            )
        except NotSupported as exc:
            raise NotSupported(
                f"backend {backend_name(backend)!r} cannot score log-likelihoods ({exc}); "
                "use --mc-scorer letter or generate"
            ) from exc
        check_count(backend, "loglikelihoods", results, len(batch.questions))
        return [
            self._grade(task, batch.task_name, question, result, request.lengths)
            for question, request, result in zip(batch.questions, requests, results)
        ]

    def regrade(self, task: Task, graded: Sequence[tuple[Question, SampleRecord]]) -> list[SampleRecord]:
        """Grade the journaled log-likelihoods again (the lengths come from the task's request)."""
        out = []
        for question, record in graded:
            lengths = owner_of(task, question.index).loglik_request(question.conversation).lengths
            pairs = record.details.get("loglik", [])
            out.append(regraded(record, self._grade(task, record.task, question, pairs, lengths)))
        return out

    @staticmethod
    def _grade(
        task: Task,
        batch_name: str,
        question: Question,
        loglikelihoods: Sequence[Sequence[float]],
        lengths: Sequence[int],
    ) -> SampleRecord:
        letters = letters_of(question.conversation)
        sums = [float(pair[0]) for pair in loglikelihoods]
        if len(sums) != len(letters):
            raise BackendError(f"got {len(sums)} log-likelihoods for {len(letters)} choices")
        chosen = letters[first_argmax(sums)]
        chosen_norm = letters[first_argmax([s / max(n, 1) for s, n in zip(sums, lengths)])]
        owner = owner_of(task, question.index)
        return make_record(
            task,
            batch_name,
            question,
            response=chosen,
            extracted=chosen,
            score=float(owner.evaluate(question.conversation, chosen)),
            score_norm=float(owner.evaluate(question.conversation, chosen_norm)),
            failure=None,
            method=Method.LOGLIK.value,
            letters=letters,
            details={
                "loglik": [[finite(float(pair[0])), int(pair[1])] for pair in loglikelihoods],
                "lengths": list(lengths),
                "norm_choice": chosen_norm,
            },
        )
