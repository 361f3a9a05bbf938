"""Generative tasks graded by running code (HumanEval): the ``sandbox`` scorer.

Replies are generated as for any generative task, then every reply of the batch is run against
its question's tests in parallel in the sandbox (``Task.run_many``). A program the sandbox stopped
at its time limit is the failure ``timeout``; a sandbox that failed itself is ``sandbox_error``;
the sandbox status, error and the end of the program's output are kept in the record's details.
"""

from __future__ import annotations

from collections.abc import Sequence

from chattasks.eval.record import Failure, Method, SampleRecord
from chattasks.eval.scorers.base import make_record
from chattasks.eval.scorers.generative import GenerativeScorer, Reply
from chattasks.task import Task

OUTPUT_KEPT = 2000
"""Characters of a program's stdout and stderr kept in its record (the last ones)."""
_FAILURES = {"timeout": Failure.TIMEOUT, "error": Failure.SANDBOX_ERROR}


class SandboxScorer(GenerativeScorer):
    """Free replies whose code runs against the task's tests in the sandbox (generated, regraded and
    checked as ``GenerativeScorer`` does; only the grading differs)."""

    name = "sandbox"

    def grade(self, task: Task, batch_name: str, replies: Sequence[Reply]) -> list[SampleRecord]:
        """The records of ``replies``, each program's verdict from the sandbox."""
        if not replies:
            return []
        results = task.run_many([q.conversation for q, _, _ in replies], [reply for _, _, reply in replies])
        records = []
        for (question, sample, reply), result in zip(replies, results):
            status = str(result.status)
            records.append(
                make_record(
                    task,
                    batch_name,
                    question,
                    response=reply,
                    extracted=None,
                    score=1.0 if result.passed else 0.0,
                    failure=_FAILURES.get(status),
                    method=Method.GENERATE.value,
                    sample=sample,
                    details={
                        "status": status,
                        "error": result.error,
                        "stdout": result.stdout[-OUTPUT_KEPT:],
                        "stderr": result.stderr[-OUTPUT_KEPT:],
                    },
                )
            )
        return records
