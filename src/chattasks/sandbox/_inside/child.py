"""What happens in the child the fork server forks for one program: set-up, the run, the verdict.

The child starts its own session, gets /dev/null as stdin, pipes as stdout and stderr, a private
verdict pipe on fd 3, a fresh working directory, rlimits, and runs the program as ``__main__``.
Only after the program's last line has run does it write ``ok <token> <pid>`` to fd 3, with the
random token made for that run, and exit 0. Anything else (an exception, SystemExit, os._exit, a
signal, the time limit) is a failure, whatever the program printed.
"""

from __future__ import annotations

import fcntl
import math
import os
import resource
import signal
import sys
import tempfile
import traceback
import types

VERDICT_FD = 3
SETUP_FAILED = 71
"""Exit status of a child that could not set the program up."""
_MIB = 1024 * 1024


def set_limit(which: int, value: int) -> None:
    """Set soft and hard limit to `value`, or to the current hard limit when that is lower."""
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def limit_resources(config: dict, request: dict) -> None:
    """Pin the child to its CPU and set every rlimit of the run."""
    if request.get("cpu") is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {request["cpu"]})
        except OSError:
            pass
    cpu_seconds = math.ceil(request["timeout"]) + 1
    set_limit(resource.RLIMIT_CORE, 0)
    set_limit(resource.RLIMIT_FSIZE, config["file_mb"] * _MIB)
    set_limit(resource.RLIMIT_NOFILE, config["open_files"])
    if config.get("processes") and hasattr(resource, "RLIMIT_NPROC"):
        set_limit(resource.RLIMIT_NPROC, config["processes"])
    if request.get("memory_mb"):
        set_limit(resource.RLIMIT_AS, request["memory_mb"] * _MIB)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def redirect_output(fds: tuple[int, int, int]) -> tuple:
    """Make /dev/null fd 0 and `fds` fds 1, 2 and 3, close every other descriptor, and point
    sys.stdin/stdout/stderr at them. Returns the new (stdout, stderr) streams."""
    sources = [os.open(os.devnull, os.O_RDONLY), *fds]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in sources]  # clear of the targets 0-3
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=target <= 2)  # the verdict pipe is not inherited
    try:
        highest = os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        highest = 1 << 16
    os.closerange(VERDICT_FD + 1, max(highest, VERDICT_FD + 1))
    stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    stdin = open(0, encoding="utf-8", closefd=False)
    for name, stream in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    return stdout, stderr


def run_child(
    config: dict, request: dict, fds: tuple[int, int, int], workdir: str, token: str, server_pid: int
) -> None:
    """Everything that happens in the forked child. Never returns.

    Everything the harness needs after the program has run (exiting, writing the verdict,
    formatting its exception) is bound to a local name first, so that a program that replaces
    ``os._exit``, ``os.write`` or the builtins cannot change how its run is reported. One
    straight sequence (set up, run, report), kept in one function so that those names never
    leave its frame.
    """
    exit_now = os._exit
    write = os.write
    try:
        os.setsid()
        if config.get("die_with_server"):  # no PID namespace: make sure we die with the server
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != server_pid:
                exit_now(SETUP_FAILED)
        stdout, stderr = redirect_output(fds)
        os.chdir(workdir)
        os.umask(0o077)
        os.environ.update(HOME=workdir, TMPDIR=workdir, PWD=workdir)
        tempfile.tempdir = None
        limit_resources(config, request)
        path = os.path.join(workdir, "main.py")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(request["code"])
        main = types.ModuleType("__main__")
        main.__file__ = path
        sys.modules["__main__"] = main
        sys.argv = [path]
        verdict = f"ok {token} {os.getpid()}\n".encode()
        token = ""
        format_exception = traceback.format_exception
        base_exception = BaseException
        memory_error = MemoryError
        run = exec
    except BaseException:
        exit_now(SETUP_FAILED)
    try:
        run(compile(request["code"], path, "exec"), main.__dict__)
    except base_exception as exc:  # the program failed: say why, never say it passed
        try:
            kind = "memory" if isinstance(exc, memory_error) else "exc"
            trace = exc.__traceback__.tb_next if exc.__traceback__ else None  # not our frame
            stderr.write("".join(format_exception(type(exc), exc, trace)))
            detail = str(exc)
            summary = type(exc).__name__ + (f": {detail}" if detail else "")
            summary = summary[:300].replace("\n", " ")
            write(VERDICT_FD, f"{kind} {summary}\n".encode())
        except BaseException:
            pass
        try:
            stdout.flush()
            stderr.flush()
        finally:
            exit_now(1)
    try:
        stdout.flush()
        stderr.flush()
    except BaseException:
        exit_now(1)
    write(VERDICT_FD, verdict)
    exit_now(0)
