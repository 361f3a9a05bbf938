"""What running one program in the sandbox produced, and the counts over many runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import Enum

from chattasks.sandbox.isolation import Isolation


class Status(str, Enum):
    """How a sandboxed program ended.

    PASSED   it ran to its last line; the harness, not the exit code, says so
    FAILED   it raised, exited early (``sys.exit``, ``os._exit``), was killed, or would not compile
    TIMEOUT  it ran past its wall-clock or CPU time limit
    MEMORY   it ran out of its address-space limit (``MemoryError``)
    ERROR    the sandbox itself failed while running it; the program's own fate is unknown
    """

    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed program.

    `returncode` is the exit code, or minus the signal number that killed the program (as in
    `subprocess`); None when the program never started. `error` says in one line why it did not
    pass. `stdout`/`stderr` hold at most the output cap, `*_truncated` say whether more was cut.
    """

    status: Status
    isolation: Isolation
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    returncode: int | None = None
    error: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def passed(self) -> bool:
        """True when the program ran to its end."""
        return self.status is Status.PASSED


@dataclass(frozen=True)
class RunSummary:
    """Counts of each status over many runs; timeouts and sandbox errors are kept apart from
    wrong answers so that a slow or broken machine never passes for a worse model."""

    passed: int = 0
    failed: int = 0
    timeout: int = 0
    memory: int = 0
    error: int = 0

    @classmethod
    def from_results(cls, results: Iterable[SandboxResult]) -> RunSummary:
        """Count the statuses of `results`."""
        counts = {status.value: 0 for status in Status}
        for result in results:
            counts[result.status.value] += 1
        return cls(**counts)

    @property
    def total(self) -> int:
        """Number of runs counted."""
        return sum(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        parts = ", ".join(f"{getattr(self, f.name)} {f.name}" for f in fields(self))
        return f"{self.total} programs: {parts}"
