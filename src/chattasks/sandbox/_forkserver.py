"""The fork server that lives inside a sandbox and runs one program at a time in a fresh child.

The host starts it as ``python -I -c <this source> <config json>`` under the chosen isolation and
talks to it over its stdin (requests) and stdout (replies): each message is a 4-byte big-endian
length and a JSON object. It imports the common modules once, then for every request forks a
child that starts its own session, gets a fresh working directory, /dev/null as stdin, pipes as
stdout and stderr, a private verdict pipe on fd 3, rlimits, and runs the program as ``__main__``.

The verdict: only after the program's last line has run does the child write
``ok <token> <pid>`` to fd 3, with a random token made for that run, and exit 0. Anything else
(an exception, SystemExit, os._exit, a signal, the time limit) is a failure, whatever the program
printed. When the child is gone, or its time is up, every process it left is killed: with a PID
namespace (the server is PID 1) by ``kill(-1, SIGKILL)``, else its process group. Its directory
and, in a private /tmp, everything else it wrote is removed before the next run.

Standard library only: this file runs under whatever interpreter the sandbox uses, without
chattasks installed. It never imports anything from chattasks.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import json
import math
import os
import resource
import selectors
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback
import types

_HEADER = struct.Struct(">I")
VERDICT_FD = 3
_MAX_VERDICT = 4096
_DRAIN_SECONDS = 1.0
_REAP_SECONDS = 5.0
_MIB = 1024 * 1024


class HostGone(Exception):
    """The host closed the control pipe: time to stop everything and leave."""


class Channel:
    """Length-prefixed JSON messages over two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.pending = bytearray()

    def fill(self) -> None:
        """Read what is waiting on the control pipe; raise HostGone at end of file."""
        data = os.read(self.read_fd, 1 << 16)
        if not data:
            raise HostGone
        self.pending += data

    def receive(self) -> dict:
        """Block until one whole message has arrived and return it."""
        while len(self.pending) < _HEADER.size:
            self.fill()
        (size,) = _HEADER.unpack(self.pending[: _HEADER.size])
        while len(self.pending) < _HEADER.size + size:
            self.fill()
        body = bytes(self.pending[_HEADER.size : _HEADER.size + size])
        del self.pending[: _HEADER.size + size]
        return json.loads(body)

    def send(self, message: dict) -> None:
        """Write one message."""
        body = json.dumps(message).encode()
        data = memoryview(_HEADER.pack(len(body)) + body)
        while data:
            data = data[os.write(self.write_fd, data) :]


class Capture:
    """Keeps the first `limit` bytes read from a pipe and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def set_limit(which: int, value: int) -> None:
    """Set soft and hard limit to `value`, or to the current hard limit when that is lower."""
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def move_fd(fd: int, target: int) -> None:
    """Make `target` a copy of `fd`, inheritable only for stdin/stdout/stderr."""
    os.dup2(fd, target, inheritable=target <= 2)


def close_other_fds(keep: int) -> None:
    """Close every descriptor above `keep` (one close_range call where the libc has it)."""
    try:
        highest = os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        highest = 1 << 16
    os.closerange(keep + 1, max(highest, keep + 1))


def run_child(
    config: dict, request: dict, fds: tuple[int, int, int], workdir: str, token: str, server_pid: int
) -> None:
    """Everything that happens in the forked child. Never returns."""
    exit_now = os._exit
    write = os.write
    try:
        os.setsid()
        if config.get("die_with_server"):  # no PID namespace: make sure we die with the server
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != server_pid:
                exit_now(73)
        sources = [os.open(os.devnull, os.O_RDONLY), *fds]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in sources]  # clear of the targets 0-3
        for target, fd in enumerate(high):
            move_fd(fd, target)
        close_other_fds(VERDICT_FD)
        os.chdir(workdir)
        os.umask(0o077)
        os.environ.update(HOME=workdir, TMPDIR=workdir, PWD=workdir)
        tempfile.tempdir = None
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
        stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
        stdin = open(0, encoding="utf-8", closefd=False)
        for name, stream in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
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
        exit_now(71)
    try:
        run(compile(request["code"], path, "exec"), main.__dict__)
    except base_exception as exc:  # the program failed: say why, never say it passed
        try:
            kind = "memory" if isinstance(exc, memory_error) else "exc"
            stderr.write(
                "".join(
                    format_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
                )
            )
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


class Server:
    """The loop: receive a request, run it in a child, clean up, reply."""

    def __init__(self, config: dict, channel: Channel) -> None:
        self.config = config
        self.channel = channel
        self.pid_namespace = bool(config["pid_namespace"]) and os.getpid() == 1
        self.root = config["root"]
        self.mounts = mount_points()

    def serve(self) -> None:
        """Answer requests until the host goes away."""
        self.channel.send({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            request = self.channel.receive()
            self.channel.send(self.run(request))

    def run(self, request: dict) -> dict:
        """Run one program and describe how it ended."""
        token = os.urandom(16).hex()
        workdir = tempfile.mkdtemp(prefix="run-", dir=self.root)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        verdict_r, verdict_w = os.pipe()
        start = time.monotonic()
        server_pid = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (out_r, out_w, err_r, err_w, verdict_r, verdict_w):
                os.close(fd)
            self.clean(workdir)
            return {"status": "error", "returncode": None, "error": f"could not fork: {exc}", "restart": True}
        if pid == 0:
            try:
                run_child(self.config, request, (out_w, err_w, verdict_w), workdir, token, server_pid)
            finally:
                os._exit(72)
        for fd in (out_w, err_w, verdict_w):
            os.close(fd)
        limit = request["max_output"]
        streams = {out_r: Capture(limit), err_r: Capture(limit), verdict_r: Capture(_MAX_VERDICT)}
        try:
            timed_out, status, duration = self.watch(pid, streams, start + request["timeout"])
        finally:
            self.kill_all(pid)
        if status is None:
            status = os.waitpid(pid, 0)[1]
        self.reap_orphans(pid)
        self.drain(streams)
        for fd in streams:
            os.close(fd)
        clean = self.clean(workdir)
        reply = judge(
            request, token, pid, status, timed_out, streams[verdict_r].data.decode("utf-8", "replace")
        )
        out, err = streams[out_r], streams[err_r]
        reply.update(
            stdout=out.text(),
            stderr=err.text(),
            stdout_truncated=out.dropped > 0,
            stderr_truncated=err.dropped > 0,
            duration=duration if duration is not None else time.monotonic() - start,
            restart=not clean,
        )
        return reply

    def watch(
        self, pid: int, streams: dict[int, Capture], deadline: float
    ) -> tuple[bool, int | None, float | None]:
        """Collect output until the child exits or the deadline passes.

        Returns (timed out, wait status if already reaped, duration if known).
        """
        selector = selectors.DefaultSelector()
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(self.channel.read_fd, selectors.EVENT_READ)
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
                selector.register(pidfd, selectors.EVENT_READ)
            except OSError:
                pidfd = None
        start = time.monotonic()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True, None, None
                events = selector.select(left if pidfd is not None else min(left, 0.005))
                for key, _ in events:
                    fd = key.fd
                    if fd == self.channel.read_fd:
                        self.channel.fill()  # the host never writes mid-run: this is end of file
                    elif fd in streams:
                        chunk = os.read(fd, 1 << 16)
                        if chunk:
                            streams[fd].add(chunk)
                        else:
                            selector.unregister(fd)
                if pidfd is not None and any(key.fd == pidfd for key, _ in events):
                    return False, None, time.monotonic() - start
                if pidfd is None:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        return False, status, time.monotonic() - start
        finally:
            selector.close()
            if pidfd is not None:
                os.close(pidfd)

    def kill_all(self, pid: int) -> None:
        """Kill the child and everything it started."""
        if self.pid_namespace:
            try:
                os.kill(-1, signal.SIGKILL)  # PID 1 of a namespace: every other process in it
            except ProcessLookupError:
                pass
            return
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def reap_orphans(self, pid: int) -> None:
        """In a PID namespace, wait until every process the child left behind is gone."""
        if not self.pid_namespace:
            return
        give_up = time.monotonic() + _REAP_SECONDS
        while time.monotonic() < give_up:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    self.kill_all(pid)
                    time.sleep(0.001)
            except ChildProcessError:
                break

    def drain(self, streams: dict[int, Capture]) -> None:
        """Read what is left in the pipes (their writers are dead, or soon given up on)."""
        give_up = time.monotonic() + _DRAIN_SECONDS
        selector = selectors.DefaultSelector()
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map() and time.monotonic() < give_up:
                for key, _ in selector.select(max(0.0, give_up - time.monotonic())):
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        streams[key.fd].add(chunk)
                    else:
                        selector.unregister(key.fd)
        finally:
            selector.close()

    def clean(self, workdir: str) -> bool:
        """Remove what the run wrote; True when nothing is left behind."""
        targets = [workdir]
        for directory in self.config.get("wipe", []):
            try:
                targets += [os.path.join(directory, name) for name in os.listdir(directory)]
            except OSError:
                pass
        # never descend into what the sandbox mounted there (an interpreter kept visible in /tmp)
        targets = [t for t in targets if not any(m == t or m.startswith(t + "/") for m in self.mounts)]
        for target in targets:
            remove(target)
        return not any(os.path.lexists(target) for target in targets)


def mount_points() -> set[str]:
    """Where something is mounted in this sandbox (the programs cannot change that)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            return {line.split()[4] for line in handle if len(line.split()) > 4}
    except OSError:
        return set()


def remove(path: str) -> None:
    """Delete a file or a whole tree, giving back any permission the program took away. Never
    recurses and never builds long paths, however deep the program nested its directories:
    each directory's subdirectories are moved up beside it before it is emptied. Never raises;
    whatever could not be removed stays (the caller checks for it)."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
            return
    except OSError:
        return
    tag = os.urandom(6).hex()
    moved = 0
    pending = [path]
    while pending:
        directory = pending.pop()
        try:
            os.chmod(directory, stat.S_IRWXU)
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
                elif directory == path:
                    pending.append(entry.path)
                else:
                    moved += 1
                    target = os.path.join(path, f".removing-{tag}-{moved}")
                    os.rename(entry.path, target)
                    pending.append(target)
            except OSError:
                pass
        if directory != path:
            try:
                os.rmdir(directory)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def judge(request: dict, token: str, pid: int, status: int, timed_out: bool, verdict: str) -> dict:
    """Decide how the run ended from what the harness saw, never from what the program printed."""
    code = os.waitstatus_to_exitcode(status)
    lines = verdict.splitlines()
    reported = next((line for line in lines if line.startswith(("exc ", "memory "))), None)
    if timed_out:
        return {"status": "timeout", "returncode": code, "error": f"ran past {request['timeout']:g} s"}
    if f"ok {token} {pid}" in lines and code == 0:
        return {"status": "passed", "returncode": 0, "error": None}
    if code == -signal.SIGXCPU:
        return {"status": "timeout", "returncode": code, "error": "ran past its CPU time limit"}
    if reported is not None:
        kind, _, message = reported.partition(" ")
        return {"status": "memory" if kind == "memory" else "failed", "returncode": code, "error": message}
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        error = f"killed by {name}"
    elif code == 71:
        error = "the sandbox could not set the program up"
    else:
        error = f"exited with code {code} before finishing"
    return {"status": "failed", "returncode": code, "error": error}


def main() -> None:
    """Entry point inside the sandbox: preload, then serve."""
    config = json.loads(sys.argv[1])
    sys.argv = sys.argv[:1]
    sys.stdout = sys.stderr  # fd 1 carries replies only: a chatty preloaded module must not corrupt them
    for name in config.get("preload", []) + (["ctypes"] if config.get("die_with_server") else []):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # children share the server's objects instead of copying them on first GC
    os.chdir("/")
    server = Server(config, Channel(0, 1))
    try:
        server.serve()
    except HostGone:
        pass
    finally:
        if server.pid_namespace:
            server.kill_all(0)
    os._exit(0)


if __name__ == "__main__":
    main()
