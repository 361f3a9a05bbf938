"""Generative tasks graded by running code (HumanEval): the ``sandbox`` scorer.

Replies are generated and read as for any generative task (``generative``: reasoning split off,
tools), then the answer of every reply of the batch is run against its question's tests in
parallel in the sandbox (``Task.run_many``); a reply cut off inside its reasoning is not run
(``truncated_in_reasoning``). A program the sandbox stopped
at its time limit is the failure ``timeout``; a sandbox that failed itself is ``sandbox_error``;
the sandbox status, error and the end of the program's output are kept in the record's details.
"""

from __future__ import annotations

from collections.abc import Sequence

from chattasks.eval.record import Failure, SampleRecord
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
        runnable = [reply for reply in replies if not reply[2].truncated_in_reasoning]
        results = (
            iter(task.run_many([q.conversation for q, _, _ in runnable], [r.answer for _, _, r in runnable]))
            if runnable
            else iter(())
        )
        records = []
        failure: Failure | None
        for question, sample, reading in replies:
            if reading.truncated_in_reasoning:
                score, failure, details = 0.0, Failure.TRUNCATED_IN_REASONING, {}
            else:
                result = next(results)
                status = str(result.status)
                score, failure = (1.0 if result.passed else 0.0), _FAILURES.get(status)
                details = {
                    "status": status,
                    "error": result.error,
                    "stdout": result.stdout[-OUTPUT_KEPT:],
                    "stderr": result.stderr[-OUTPUT_KEPT:],
                }
            records.append(
                self.record_of(task, batch_name, question, sample, reading, None, score, failure, details)
            )
        return records
