"""The fork server that lives inside a sandbox and runs one program at a time in a fresh child.

The host starts it under the chosen isolation (see `chattasks.sandbox._inside`) and talks to it
over its stdin (requests) and stdout (replies) with `protocol.Channel`. It imports the common
modules once, then for every request forks a child (`child.run_child`) and watches it. When the
child is gone, or its time is up, every process it left is killed: with a PID namespace (the
server is PID 1) by ``kill(-1, SIGKILL)``, else its process group. Its directory and, in a
private /tmp, everything else it wrote is removed (`cleanup.remove`) before the next run.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import sys
import tempfile
import time

from .child import SETUP_FAILED, run_child
from .cleanup import mount_points, remove
from .protocol import Channel, HostGone

_MAX_VERDICT = 4096
_DRAIN_SECONDS = 1.0
_REAP_SECONDS = 5.0


class Capture:
    """Keeps the first `limit` bytes read from a pipe and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        """Keep what fits of `chunk`, count the rest."""
        room = self.limit - len(self.data)
        self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        """What was kept, decoded (bad bytes replaced)."""
        return self.data.decode("utf-8", errors="replace")


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
    elif code == SETUP_FAILED:
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
