"""Run programs in sandboxes: one at a time (`run_program`) or many in parallel (`SandboxPool`)."""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from chattasks.errors import SandboxError, ServerLost
from chattasks.sandbox._handle import ForkServer, default_python
from chattasks.sandbox.isolation import Isolation, resolve_isolation
from chattasks.sandbox.result import SandboxResult, Status

DEFAULT_TIMEOUT = 5.0
"""Seconds of wall-clock time a program may run."""
DEFAULT_MEMORY_MB = 512
"""Address space a program may map, in MiB (RLIMIT_AS)."""
DEFAULT_MAX_OUTPUT = 64 * 1024
"""Bytes of stdout and of stderr kept per program; the rest is counted and dropped."""
DEFAULT_PRELOAD: tuple[str, ...] = (
    "abc", "array", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math", "numbers", "operator",
    "random", "re", "statistics", "string", "struct", "textwrap", "typing",
)  # fmt: skip
"""Modules each sandbox imports once, so that forked programs find them already loaded."""


@dataclass(frozen=True)
class _Job:
    request: dict
    future: Future[SandboxResult]


class SandboxPool:
    """A fixed set of sandboxes, each a pre-started interpreter that forks a fresh child for
    every program; programs run in parallel, one per sandbox at a time.

    `workers` sandboxes (default: one per CPU this process may use), each running `python`
    (default: this interpreter) with the `preload` modules imported once, under `isolation`
    ("auto", "bwrap", "unshare-ro" or "none", which needs `allow_unsafe=True`; see
    `resolve_isolation`). A program that hangs, crashes,
    floods its output or kills its own server affects only its own result: the server is
    restarted and the next program gets a fresh one. Use it as a context manager, or call
    `close()`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        isolation: str | Isolation = "auto",
        allow_unsafe: bool = False,
        python: str | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
    ) -> None:
        if workers is None:
            workers = len(_cpus())
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        python = python or default_python()
        self.isolation: Isolation = resolve_isolation(isolation, allow_unsafe=allow_unsafe, python=python)
        self.workers = workers
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        cpus = _cpus()
        self._threads = [
            threading.Thread(
                target=_work,
                args=(ForkServer(self.isolation, python, preload), self._jobs, cpus[i % len(cpus)]),
                name=f"chattasks-sandbox-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._jobs, list(self._threads))

    @property
    def closed(self) -> bool:
        """True once `close()` has been called."""
        return self._closed

    def submit(
        self,
        code: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> Future[SandboxResult]:
        """Queue one program; the future gives its SandboxResult, or raises SandboxError when no
        sandbox could be started."""
        request = _request(code, timeout=timeout, memory_mb=memory_mb, max_output=max_output)
        future: Future[SandboxResult] = Future()
        with self._lock:
            if self._closed:
                raise SandboxError("this SandboxPool is closed")
            self._jobs.put(_Job(request, future))
        return future

    def run(
        self,
        code: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> SandboxResult:
        """Run one program and wait for its result."""
        return self.submit(code, timeout=timeout, memory_mb=memory_mb, max_output=max_output).result()

    def run_many(
        self,
        programs: Iterable[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> list[SandboxResult]:
        """Run every program, in parallel across the pool; results come back in input order."""
        futures = [
            self.submit(code, timeout=timeout, memory_mb=memory_mb, max_output=max_output)
            for code in programs
        ]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Cancel the programs still queued, let the running ones finish, then stop every
        sandbox. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        self._finalizer()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_program(
    code: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    max_output: int = DEFAULT_MAX_OUTPUT,
    isolation: str | Isolation = "auto",
    allow_unsafe: bool = False,
) -> SandboxResult:
    """Run one Python program in a fresh sandbox and say how it ended.

    It passes only when its last line ran; exiting early, raising, or printing anything does not
    count. For many programs use `SandboxPool` (or `default_pool()`), which starts its sandboxes
    once instead of once per program.
    """
    with SandboxPool(1, isolation=isolation, allow_unsafe=allow_unsafe) as pool:
        return pool.run(code, timeout=timeout, memory_mb=memory_mb, max_output=max_output)


_default: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool (one sandbox per CPU, strongest isolation), started on first use
    and closed at exit. Raises SandboxUnavailable where no isolation is available."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = SandboxPool()
            atexit.register(_default.close)
        return _default


def set_default_pool(pool: SandboxPool | None) -> None:
    """Make `pool` the one `default_pool()` returns (None: start a fresh one on next use).
    The previous default pool is not closed."""
    global _default
    with _default_lock:
        _default = pool


def _request(code: str, *, timeout: float, memory_mb: int | None, max_output: int) -> dict:
    """Check the limits and build the request sent to a server."""
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    if memory_mb is not None and not memory_mb > 0:
        raise ValueError(f"memory_mb must be positive or None, not {memory_mb!r}")
    if not max_output >= 0:
        raise ValueError(f"max_output must be zero or more, not {max_output!r}")
    return {"code": code, "timeout": float(timeout), "memory_mb": memory_mb, "max_output": max_output}


def _cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _work(server: ForkServer, jobs: queue.SimpleQueue[_Job | None], cpu: int) -> None:
    """A worker thread: owns one server (started from this thread, so the sandbox's
    die-with-parent follows this thread) and runs queued programs on it until told to stop."""
    try:
        while (job := jobs.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(_execute(server, {**job.request, "cpu": cpu}))
            except BaseException as exc:
                job.future.set_exception(exc)
    finally:
        server.stop()


def _execute(server: ForkServer, request: dict) -> SandboxResult:
    """Run one request on `server`, starting or restarting it as needed."""
    if not server.alive:
        server.stop()
        server.start()
    start = time.monotonic()
    try:
        reply = server.execute(request)
    except ServerLost as exc:
        return SandboxResult(
            status=Status.ERROR,
            isolation=server.isolation,
            duration=time.monotonic() - start,
            error=str(exc),
        )
    return SandboxResult(
        status=Status(reply["status"]),
        isolation=server.isolation,
        stdout=reply.get("stdout", ""),
        stderr=reply.get("stderr", ""),
        duration=reply.get("duration", time.monotonic() - start),
        returncode=reply.get("returncode"),
        error=reply.get("error"),
        stdout_truncated=reply.get("stdout_truncated", False),
        stderr_truncated=reply.get("stderr_truncated", False),
    )


def _shutdown(jobs: queue.SimpleQueue[_Job | None], threads: list[threading.Thread]) -> None:
    """Tell every worker to stop after the queued jobs, and wait for them."""
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()
