"""Which kind of isolation this machine offers, and the command line that starts a sandbox with it.

Three levels, strongest first:

- ``bwrap``   bubblewrap: new user, PID, network, IPC, UTS and cgroup namespaces; a read-only view
              of the root filesystem with private ``/tmp``, ``/dev/shm`` and ``/run``, home
              directories hidden; no capabilities; no nested user namespaces; a clean environment;
              killed with its parent.
- ``unshare`` util-linux ``unshare``: new user, PID, network, IPC and UTS namespaces, a clean
              environment, and the sandbox's own rlimits and temporary directory. The filesystem
              stays writable wherever your user may write.
- ``none``    a plain child process with rlimits and a clean environment. Only with
              ``allow_unsafe=True``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import warnings
from enum import Enum
from pathlib import Path

from chattasks.errors import SandboxUnavailable, SandboxWarning

TMPFS_BYTES = 256 * 1024 * 1024
"""Size of the sandbox's private /tmp and /dev/shm (bwrap only)."""

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_HIDDEN = ("/home", "/root", "/run")


class Isolation(str, Enum):
    """The isolation a sandbox runs under; see the module docstring."""

    BWRAP = "bwrap"
    UNSHARE = "unshare"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    @property
    def has_pid_namespace(self) -> bool:
        """True when the sandbox owns a PID namespace, so killing every process in it is safe."""
        return self is not Isolation.NONE


def resolve_isolation(
    requested: str | Isolation = "auto", *, allow_unsafe: bool = False, python: str | None = None
) -> Isolation:
    """The isolation level to use for `requested` ("auto", "bwrap", "unshare" or "none").

    "auto" picks the strongest level that works here and warns (`SandboxWarning`) when that is
    not bubblewrap. Raises `SandboxUnavailable` when the level asked for does not work here, or
    when the only option left is no isolation and `allow_unsafe` is False.
    """
    python = python or sys.executable
    if requested == "auto":
        for level in (Isolation.BWRAP, Isolation.UNSHARE):
            if works(level, python):
                if level is not Isolation.BWRAP:
                    warnings.warn(
                        "bubblewrap (bwrap) is not available: model-written code will run with the "
                        "weaker unshare + rlimits fallback, which leaves the filesystem writable. "
                        "Install it (Debian/Ubuntu: apt-get install bubblewrap) for full isolation.",
                        SandboxWarning,
                        stacklevel=2,
                    )
                return level
        if not allow_unsafe:
            raise SandboxUnavailable(
                "neither bubblewrap (bwrap) nor unshare can isolate programs on this machine; "
                "install bubblewrap, or pass allow_unsafe=True to run untrusted code unisolated"
            )
        requested = Isolation.NONE
    try:
        level = Isolation(requested)
    except ValueError:
        raise ValueError(
            f"isolation must be 'auto', 'bwrap', 'unshare' or 'none', not {requested!r}"
        ) from None
    if level is Isolation.NONE:
        if not allow_unsafe:
            raise SandboxUnavailable(
                "isolation='none' runs untrusted code with no isolation at all; "
                "pass allow_unsafe=True if you really mean it"
            )
        warnings.warn(
            "running untrusted code with NO isolation (allow_unsafe=True)", SandboxWarning, stacklevel=2
        )
        return level
    if not works(level, python):
        raise SandboxUnavailable(f"{level.value} isolation does not work on this machine")
    return level


@functools.cache
def works(level: Isolation, python: str) -> bool:
    """True when `python` starts and runs under `level` here (checked once, then cached)."""
    if level is Isolation.NONE:
        return True
    try:
        command = wrap_command(level, [python, "-I", "-c", "pass"], python=python)
    except SandboxUnavailable:
        return False
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=clean_env("/tmp")
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def wrap_command(level: Isolation, argv: list[str], *, python: str | None = None) -> list[str]:
    """`argv` wrapped so that it runs under `level`. Raises `SandboxUnavailable` when the tool
    for that level is not installed."""
    if level is Isolation.NONE:
        return list(argv)
    if level is Isolation.UNSHARE:
        unshare = shutil.which("unshare")
        if unshare is None:
            raise SandboxUnavailable("unshare (util-linux) is not installed")
        prefix = [unshare, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]
        prefix += ["--mount-proc", "--ipc", "--uts", "--"]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:  # unshare itself dies with us, taking the sandbox along
            prefix = [setpriv, "--pdeathsig", "KILL", "--", *prefix]
        return prefix + list(argv)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    flags = _bwrap_flags(bwrap)
    command = [bwrap, "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent"]
    command += ["--new-session", "--as-pid-1", "--hostname", "sandbox"]
    if "--disable-userns" in flags:
        command.append("--disable-userns")
    command += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for private in ("/tmp", "/dev/shm"):
        if "--size" in flags:
            command += ["--size", str(TMPFS_BYTES)]
        command += ["--tmpfs", private]
    hidden = [path for path in _hidden_dirs() if os.path.isdir(path)]
    for path in hidden:
        command += ["--tmpfs", path]
    for path in _interpreter_dirs(python or sys.executable):
        if any(_is_within(path, mask) for mask in [*hidden, "/tmp"]):
            command += ["--ro-bind", path, path]
    command += ["--clearenv", "--setenv", "PATH", _SAFE_PATH, "--setenv", "LANG", "C.UTF-8"]
    command += ["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--chdir", "/", "--"]
    return command + list(argv)


def clean_env(home: str) -> dict[str, str]:
    """The whole environment a sandboxed program gets: nothing from ours (no tokens, no keys)."""
    return {"PATH": _SAFE_PATH, "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home}


@functools.cache
def _bwrap_flags(bwrap: str) -> frozenset[str]:
    """The options this bwrap accepts, read from its --help."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(word for word in text.split() if word.startswith("--"))


def _hidden_dirs() -> list[str]:
    """Directories replaced by an empty tmpfs inside bwrap, outermost first, none inside another."""
    candidates = sorted({*_HIDDEN, os.path.expanduser("~")}, key=len)
    kept: list[str] = []
    for path in candidates:
        if path not in ("", "/") and not any(_is_within(path, outer) for outer in kept):
            kept.append(path)
    return kept


def _interpreter_dirs(python: str) -> list[str]:
    """Directories the sandboxed interpreter needs to see, even when they lie in a hidden dir."""
    dirs: list[str] = []
    if Path(python).resolve() == Path(sys.executable).resolve():
        dirs += [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    link = Path(python).absolute()
    for _ in range(40):  # follow the symlink chain, keeping each hop's install prefix
        dirs.append(str(link.parent.parent))
        if not link.is_symlink():
            break
        link = (link.parent / os.readlink(link)).absolute()
    unique: list[str] = []
    for path in sorted({os.path.abspath(d) for d in dirs}, key=len):
        if not any(_is_within(path, outer) for outer in unique) and os.path.isdir(path):
            unique.append(path)
    return unique


def _is_within(path: str, outer: str) -> bool:
    """True when `path` is `outer` or lies inside it."""
    return path == outer or path.startswith(outer.rstrip("/") + "/")
