"""The host's side of one sandboxed fork server: start it, send it programs, stop it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from chattasks.errors import SandboxError, ServerLost
from chattasks.sandbox._inside import command
from chattasks.sandbox._inside.cleanup import remove
from chattasks.sandbox._inside.protocol import decode, encode
from chattasks.sandbox.isolation import Isolation, clean_env, wrap_command

_START_SECONDS = 30.0
_REPLY_GRACE_SECONDS = 15.0
_STDERR_TAIL = 2000
_ROOT_PREFIX = "chattasks-sandbox-"

FILE_MB = 64
"""Largest file a program may write (RLIMIT_FSIZE)."""
OPEN_FILES = 256
"""Most files a program may hold open (RLIMIT_NOFILE)."""
PROCESSES = 256
"""Most processes and threads inside one sandbox (RLIMIT_NPROC; not enforced for root)."""
RUNS_PER_SERVER = 1000
"""Programs one sandbox runs before it is replaced, bounding any state a run could leave behind
that the clean-up after each run does not reach (System V IPC objects, for one)."""


class ForkServer:
    """One sandbox holding a pre-started interpreter that forks a fresh child per program."""

    def __init__(self, isolation: Isolation, python: str, preload: Sequence[str]) -> None:
        self.isolation = isolation
        self.python = python
        self.preload = list(preload)
        self.process: subprocess.Popen[bytes] | None = None
        self.root: str | None = None
        self.pending = bytearray()
        self.stderr: Any = None
        self.runs = 0

    @property
    def alive(self) -> bool:
        """True while the server process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it has loaded its modules. Raises SandboxError."""
        if self.isolation.has_private_tmp:
            root, wipe = "/tmp", ["/tmp", "/dev/shm"]
        else:
            _sweep_stale_roots()
            self.root = root = tempfile.mkdtemp(prefix=f"{_ROOT_PREFIX}{os.getpid()}-")
            wipe = [root]
        config = {
            "root": root,
            "wipe": wipe,
            "pid_namespace": self.isolation.has_pid_namespace,
            "preload": self.preload,
            "file_mb": FILE_MB,
            "open_files": OPEN_FILES,
            "processes": PROCESSES if self.isolation.has_pid_namespace else None,
            "die_with_server": not self.isolation.has_pid_namespace,
        }
        argv = command(self.python, "server", json.dumps(config))
        self.stderr = tempfile.TemporaryFile()
        self.pending.clear()
        self.runs = 0
        try:
            self.process = subprocess.Popen(
                wrap_command(self.isolation, argv, python=self.python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env=clean_env(root),
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
            hello = self._receive(time.monotonic() + _START_SECONDS)
        except (OSError, ServerLost) as exc:
            self.stop()
            raise SandboxError(f"the {self.isolation.value} sandbox did not start: {exc}") from exc
        if not hello.get("ready"):
            self.stop()
            raise SandboxError(f"the {self.isolation.value} sandbox sent {hello!r} instead of ready")

    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one program; returns the server's reply. Raises ServerLost when it died or hung,
        after killing it."""
        if self.process is None or self.process.stdin is None or not self.alive:
            raise ServerLost("the sandbox is not running")
        try:
            self.process.stdin.write(encode(request))
            self.process.stdin.flush()
            reply = self._receive(time.monotonic() + request["timeout"] + _REPLY_GRACE_SECONDS)
        except (OSError, ServerLost) as exc:
            self.stop()
            raise ServerLost(f"the sandbox died while running the program: {exc}") from exc
        self.runs += 1
        if reply.get("restart") or self.runs >= RUNS_PER_SERVER:
            self.stop()
        return reply

    def stop(self) -> None:
        """Stop the server and everything in its sandbox; remove its temporary directory."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                try:
                    process.stdin.close()  # the server leaves cleanly at end of file ...
                except OSError:
                    pass
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # ... or goes with its whole group
            except OSError:
                pass
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None
        if self.root is not None:
            remove(self.root)
            self.root = None

    def _receive(self, deadline: float) -> dict[str, Any]:
        """Read one reply before `deadline`; raises ServerLost on end of file or timeout."""
        if self.process is None or self.process.stdout is None:
            raise ServerLost("the sandbox is not running")
        fd = self.process.stdout.fileno()
        while (reply := decode(self.pending)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ServerLost("no answer in time")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise ServerLost(f"it exited ({self._stderr_tail()})")
            self.pending += chunk
        return reply

    def _stderr_tail(self) -> str:
        """The end of what the server wrote to its stderr, for error messages."""
        if self.stderr is None:
            return "no stderr"
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - _STDERR_TAIL))
        text = self.stderr.read().decode("utf-8", "replace").strip()
        return text or "no stderr"


def _sweep_stale_roots() -> None:
    """Remove the temporary directories of sandboxes whose host process died without cleaning up
    (killed with SIGKILL, say); the host's PID is part of each directory's name."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        pid = name[len(_ROOT_PREFIX) :].split("-", 1)[0]
        if name.startswith(_ROOT_PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            remove(os.path.join(base, name))


def default_python() -> str:
    """The interpreter sandboxes run by default: the one running chattasks."""
    return sys.executable
