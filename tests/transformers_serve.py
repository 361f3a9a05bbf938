"""A real OpenAI-compatible server for tests: ``transformers serve`` of a local model folder on loopback.

``TransformersServe(folder, log)`` runs ``python -m transformers.cli.transformers serve FOLDER``
(the ``serving`` extra of transformers: fastapi, uvicorn, openai) on 127.0.0.1 at a free port, on
CPU in float32, offline (``HF_HUB_OFFLINE=1``, no update check), in its own process group, with
its output in ``log``. The model is pinned (loaded before the server answers), so its name in
requests is the folder's path. ``start`` waits, at most ``STARTUP_SECONDS``, for ``/health``;
``stop`` kills the whole group (``SIGKILL``: as a crashed or killed server goes, mid-request).
The port stays the same across a stop and a start, as a restarted server's would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

STARTUP_SECONDS = 300.0  # importing torch and transformers and loading the model, on a busy 2-core machine
SERVE_MODULES = ("fastapi", "uvicorn", "openai")


def serve_available() -> bool:
    """Whether ``transformers serve`` can run here (transformers with its ``serving`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("transformers", *SERVE_MODULES))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TransformersServe:
    """``transformers serve`` of ``folder`` on 127.0.0.1 (see the module docstring)."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder = str(folder)
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TransformersServe:
        """Start the server and wait until it answers ``/health``; RuntimeError with its log tail if it does not."""
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.folder]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--dtype", "float32"]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "CUDA_VISIBLE_DEVICES": "",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2.0).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"transformers serve did not come up on port {self.port}; its log ends:\n{tail}")

    def stop(self) -> None:
        """Kill the server's whole process group and reap it (nothing happens when it is not running)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def __enter__(self) -> TransformersServe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
