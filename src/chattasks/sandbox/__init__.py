"""Run untrusted, model-written Python programs and grade them by what the harness saw.

    >>> from chattasks.sandbox import run_program
    >>> run_program("import sys; print('PASSED'); sys.exit(0)").status
    <Status.FAILED: 'failed'>

What it does:

- Runs each program in a fresh child forked from a pre-started interpreter inside the strongest
  isolation available (see `chattasks.sandbox.isolation`): bubblewrap (read-only root, private
  /tmp, no network, own PID namespace, no capabilities, dies with its parent), else the
  ``unshare-ro`` fallback (the same, built from util-linux ``unshare`` and mount calls), else
  nothing, and that only with ``allow_unsafe=True``. The level is in every result and a
  `SandboxWarning` is raised when it is not bubblewrap.
- Limits each program: wall-clock and CPU time, address space, file size, open files, no core
  dumps, processes (not for root), captured output; pins it to one CPU so that a program
  spinning threads does not slow its neighbours; gives it a clean environment (none of ours:
  no tokens), a fresh working directory and ``/dev/null`` as stdin.
- Decides success itself: a program passes only when its last line ran, reported over a private
  pipe with a per-run random token. ``sys.exit(0)``, ``os._exit(0)``, ``raise SystemExit``,
  killing its parent, or printing anything at all never passes.
- Afterwards kills every process the program left (all of them, by PID namespace), removes what
  it wrote, and restarts the sandbox if anything could not be removed.

What it does NOT protect against:

- Kernel bugs. Namespaces share the host kernel; there is no seccomp filter and no VM.
- Reading files: the whole root filesystem is readable, except home directories, /run and
  /tmp; under ``none`` nothing at all is contained, and the filesystem is writable wherever
  your user may write.
- Unix sockets of host services outside /run (where some put them) stay connectable: a
  read-only mount does not stop ``connect()``. Abstract sockets and the network do not reach
  out of the network namespace.
- Resource exhaustion across processes: memory and file size are per-process limits, and when
  running as root the process limit does not apply, so a fork bomb is stopped by the time limit,
  not before. A program may widen its CPU affinity again; there are no cgroups.
- A program that tampers with the interpreter running its own tests: the tests run in the same
  process as the candidate, so code that inspects the harness's frames to steal the verdict
  token, edits frames from a trace function, or returns objects whose ``__eq__`` is always true
  can pass without being right. Printing and exiting early are caught; deliberate in-process
  subversion is not.
- Cross-run state other than files: System V IPC objects live as long as the sandbox.
- With ``isolation="none"``: daemonised grandchildren can outlive their program.
"""

from chattasks.errors import SandboxWarning
from chattasks.sandbox.isolation import Isolation, resolve_isolation
from chattasks.sandbox.pool import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    SandboxPool,
    default_pool,
    run_program,
    set_default_pool,
)
from chattasks.sandbox.result import RunSummary, SandboxResult, Status

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "Isolation",
    "RunSummary",
    "SandboxPool",
    "SandboxResult",
    "SandboxWarning",
    "Status",
    "default_pool",
    "resolve_isolation",
    "run_program",
    "set_default_pool",
]
