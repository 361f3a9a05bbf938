"""Which kind of isolation this machine offers, and the command line that starts a sandbox with it.

Three levels, strongest first:

- ``bwrap``       bubblewrap: new user, PID, network, IPC, UTS and cgroup namespaces; a read-only
                  view of the root filesystem with private ``/tmp``, ``/dev/shm`` and ``/run``, a
                  minimal ``/dev``, home directories hidden; no capabilities; no nested user
                  namespaces; a clean environment; killed with its parent.
- ``unshare-ro``  the fallback without bubblewrap, made of util-linux ``unshare`` (the same
                  namespaces) and a set-up step in Python (`chattasks.sandbox._inside.readonly`)
                  that gives the same view of the filesystem: every mount read-only but fresh
                  ``/tmp`` and ``/dev/shm``, a minimal ``/dev``, home directories and ``/run``
                  hidden; then it drops every capability and forbids nested user namespaces.
                  It needs user namespaces: as root always, as another user where the kernel
                  allows unprivileged ones. Where that set-up fails the level is unavailable.
- ``none``        a plain child process with rlimits and a clean environment. Only with
                  ``allow_unsafe=True``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from enum import Enum
from pathlib import Path

from chattasks.errors import SandboxUnavailable, SandboxWarning
from chattasks.sandbox._inside import command

TMPFS_BYTES = 256 * 1024 * 1024
"""Size of the sandbox's private /tmp and of its /dev/shm."""
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
)
"""What to do about a machine where programs cannot run under bubblewrap."""

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_HIDDEN = ("/home", "/root", "/run")
_PRIVATE = ("/tmp", "/dev/shm")
_CHECK_SECONDS = 30
_NAMESPACES_REFUSED = (  # how unshare and bwrap say that the kernel refused them a user namespace
    "unshare: unshare failed",
    "bwrap: Creating new namespace failed",
    "bwrap: No permissions to creat",
)


class Isolation(str, Enum):
    """The isolation a sandbox runs under; see the module docstring."""

    BWRAP = "bwrap"
    UNSHARE_RO = "unshare-ro"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    @property
    def has_pid_namespace(self) -> bool:
        """True when the sandbox owns a PID namespace, so killing every process in it is safe."""
        return self is not Isolation.NONE

    @property
    def has_private_tmp(self) -> bool:
        """True when /tmp and /dev/shm in the sandbox are its own, and the rest is read-only."""
        return self is not Isolation.NONE


def resolve_isolation(
    requested: str | Isolation = "auto", *, allow_unsafe: bool = False, python: str | None = None
) -> Isolation:
    """The isolation level to use for `requested` ("auto", "bwrap", "unshare-ro" or "none").

    "auto" picks the strongest level that works here and warns (`SandboxWarning`) when that is
    not bubblewrap. Raises `SandboxUnavailable` when the level asked for does not work here, or
    when the only option left is no isolation and `allow_unsafe` is False.
    """
    python = python or sys.executable
    if requested == "auto":
        if works(Isolation.BWRAP, python):
            return Isolation.BWRAP
        if works(Isolation.UNSHARE_RO, python):
            warnings.warn(
                "bubblewrap (bwrap) is not available: model-written code will run in the unshare-ro "
                "fallback (read-only filesystem, private /tmp, no network, no capabilities). For the "
                f"full sandbox, {INSTALL_HINT}.",
                SandboxWarning,
                stacklevel=2,
            )
            return Isolation.UNSHARE_RO
        if not allow_unsafe:
            raise SandboxUnavailable(
                "neither bubblewrap nor the read-only unshare fallback can isolate programs on this "
                f"machine ({_why(Isolation.UNSHARE_RO, python)}): {INSTALL_HINT}, or pass "
                "allow_unsafe=True to run untrusted code with no isolation at all"
            )
        requested = Isolation.NONE
    try:
        level = Isolation(requested)
    except ValueError:
        known = ", ".join(repr(level.value) for level in Isolation)
        raise ValueError(f"isolation must be 'auto', {known}, not {requested!r}") from None
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
        raise SandboxUnavailable(
            f"{level.value} isolation does not work on this machine ({_why(level, python)})"
        )
    return level


def works(level: Isolation, python: str) -> bool:
    """True when `python` starts and runs under `level` here (checked once, then cached)."""
    return failure(level, python) is None


@functools.cache
def failure(level: Isolation, python: str) -> str | None:
    """Why `python` cannot run under `level` here, in one line; None when it can. Checked by
    starting it once, then cached."""
    if level is Isolation.NONE:
        return None
    try:
        argv = wrap_command(level, [python, "-I", "-c", "pass"], python=python)
    except SandboxUnavailable as exc:
        return str(exc)
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_CHECK_SECONDS, env=clean_env("/tmp")
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{os.path.basename(argv[0])} did not run: {exc}"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return f"{os.path.basename(argv[0])} exited with status {done.returncode}"
    if lines[-1].startswith(_NAMESPACES_REFUSED):
        return f"the kernel refused new namespaces to this user ({lines[-1]})"
    return lines[-1]


def _why(level: Isolation, python: str) -> str:
    return failure(level, python) or "it failed its check"


def wrap_command(level: Isolation, argv: list[str], *, python: str | None = None) -> list[str]:
    """`argv` wrapped so that it runs under `level`. Raises `SandboxUnavailable` when the tool
    for that level is not installed."""
    python = python or sys.executable
    if level is Isolation.NONE:
        return list(argv)
    if level is Isolation.UNSHARE_RO:
        return _unshare_ro_command(argv, python)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    flags = _bwrap_flags(bwrap)
    command = [bwrap, "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent"]
    command += ["--new-session", "--as-pid-1", "--hostname", "sandbox"]
    if "--disable-userns" in flags:
        command.append("--disable-userns")
    command += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for private in _PRIVATE:
        if "--size" in flags:
            command += ["--size", str(TMPFS_BYTES)]
        command += ["--tmpfs", private]
    hidden, keep = _masks(python)
    for path in hidden:
        command += ["--tmpfs", path]
    for path in keep:
        command += ["--ro-bind", path, path]
    for path in hidden:  # after the binds in them: their mount points are made first
        command += ["--remount-ro", path]
    command += ["--clearenv", "--setenv", "PATH", _SAFE_PATH, "--setenv", "LANG", "C.UTF-8"]
    command += ["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--chdir", "/", "--"]
    return command + list(argv)


def _unshare_ro_command(argv: list[str], python: str) -> list[str]:
    """`argv` run by `python`'s read-only set-up inside fresh namespaces made by unshare."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SandboxUnavailable("unshare (util-linux) is not installed")
    prefix = [unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--kill-child"]
    prefix += ["--mount-proc", "--ipc", "--uts", "--cgroup", "--"]
    setpriv = shutil.which("setpriv")
    if setpriv is not None:  # unshare itself dies with us, taking the sandbox along
        prefix = [setpriv, "--pdeathsig", "KILL", "--", *prefix]
    hidden, keep = _masks(python)
    config = {"tmpfs_bytes": TMPFS_BYTES, "hidden": hidden, "keep": keep}
    return prefix + command(python, "readonly", json.dumps(config), "--", *argv)


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


def _masks(python: str) -> tuple[list[str], list[str]]:
    """The directories hidden behind an empty tmpfs in a sandbox, and the directories of
    `python` that lie in one of them or in a private /tmp or /dev/shm and are bound back."""
    hidden = [path for path in _hidden_dirs() if os.path.isdir(path)]
    hidden = [path for path in hidden if not _is_within(path, "/tmp") and not _is_within(path, "/dev")]
    masked = [*hidden, *_PRIVATE]
    keep = [path for path in _interpreter_dirs(python) if any(_is_within(path, mask) for mask in masked)]
    return hidden, keep


def _hidden_dirs() -> list[str]:
    """Directories replaced by an empty tmpfs in a sandbox, outermost first, none inside another."""
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
