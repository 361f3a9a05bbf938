"""The set-up of the ``unshare-ro`` sandbox: a read-only view of the host, then the command.

Runs as PID 1 and root of the fresh user, mount, PID, network, IPC, UTS and cgroup namespaces
that util-linux ``unshare`` made (this root is the calling user outside), then replaces itself
with the command after ``--``. In order:

1. mount propagation is turned off (``/`` recursively private): nothing mounted here reaches the
   host, nothing mounted on the host later shows up here;
2. ``/tmp`` and ``/dev/shm`` become fresh, size-limited tmpfs, the only writable places; ``/dev``
   a minimal one (null, zero, full, random, urandom, tty and a private devpts), so no disk of
   the host can be opened; home directories and ``/run`` (sockets of host services) are hidden
   behind empty ones. The interpreter's own directories, where they lie in one of these, are
   bound back;
3. no further user namespace may be made in here (``user.max_user_namespaces`` = 0);
4. every other mount is remounted read-only, one at a time, keeping the flags the kernel locked;
5. check: every mount reachable by path except /tmp and /dev/shm is read-only;
6. every capability is dropped for good (bounding, inheritable and ambient sets too, and
   no_new_privs), so that nothing in the sandbox can mount, unmount or remount and undo 1-5.

Remounting mount by mount with mount(2), rather than with one recursive mount_setattr(2), works
on every kernel that has user namespaces (mount_setattr needs 5.12); step 5 checks the result
either way. Any failure stops it with a one-line message on stderr and exit status 1 before the
command has started, so that the host finds the level unusable and refuses to run untrusted code.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

from .cleanup import mount_points

WRITABLE = ("/tmp", "/dev/shm")
"""The only writable mounts in the sandbox, both fresh tmpfs."""
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
"""The host's device nodes the sandbox's /dev holds."""

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_LOCKABLE = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC  # the same bits in statvfs's f_flag
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_CAPABILITY_VERSION_3 = 0x20080522
_SMALL_TMPFS = 1024 * 1024
_CAPABILITY_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")

_libc = ctypes.CDLL(None, use_errno=True)


class SetupFailed(Exception):
    """The read-only sandbox could not be had."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); raises OSError."""
    encoded = [None if text is None else text.encode() for text in (source, target, fstype, data)]
    result = _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3])
    _check(result, f"mount {target}")


def mount_tmpfs(path: str, size: int, mode: int, flags: int = _MS_NOSUID | _MS_NODEV) -> None:
    """A fresh tmpfs of at most `size` bytes on `path`."""
    mount("tmpfs", path, "tmpfs", flags, f"size={size},mode={mode:o}")


def minimal_dev(host_dev: str) -> None:
    """Replace /dev by a tmpfs holding only harmless devices (bound from `host_dev`, a path to
    the host's /dev), the usual links, an empty /dev/shm and a private devpts."""
    mount_tmpfs("/dev", _SMALL_TMPFS, 0o755, _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    for name in DEVICES:
        if os.path.exists(f"{host_dev}/{name}"):
            os.close(os.open(f"/dev/{name}", os.O_WRONLY | os.O_CREAT, 0o666))
            mount(f"{host_dev}/{name}", f"/dev/{name}", None, _MS_BIND)
    links = {"fd": "/proc/self/fd", "ptmx": "pts/ptmx"}
    links.update((name, f"/proc/self/fd/{fd}") for fd, name in enumerate(("stdin", "stdout", "stderr")))
    for name, target in links.items():
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm")
    os.mkdir("/dev/pts")
    try:  # a terminal is a nicety for programs, not part of the isolation
        mount("devpts", "/dev/pts", "devpts", _MS_NOSUID | _MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    except OSError:
        pass


def hide_and_replace(config: dict) -> None:
    """Steps 1 and 2 of the module docstring."""
    mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    keep = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in config["keep"]}
    host_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY)
    minimal_dev(f"/proc/self/fd/{host_dev}")
    os.close(host_dev)
    for path in WRITABLE:
        mount_tmpfs(path, config["tmpfs_bytes"], 0o1777)
    for path in config["hidden"]:
        mount_tmpfs(path, _SMALL_TMPFS, 0o755)
    for path, fd in sorted(keep.items()):
        os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)


def forbid_user_namespaces() -> None:
    """Step 3: allow no user namespace below this one (kernels without the knob are skipped)."""
    try:
        with open("/proc/sys/user/max_user_namespaces", "w") as knob:
            knob.write("0")
    except FileNotFoundError:
        pass


def writable_mounts() -> dict[str, int]:
    """The writable mounts other than /tmp and /dev/shm that a path leads to, with statvfs's
    flags. A mount hidden under another cannot be reached by path, and is left out."""
    found = {}
    for path in mount_points():
        try:
            flags = os.statvfs(path).f_flag
        except OSError:
            continue
        if path not in WRITABLE and not flags & os.ST_RDONLY:
            found[path] = flags
    return found


def remount_read_only() -> None:
    """Step 4, then step 5: raise SetupFailed naming the mounts still writable."""
    for path, flags in writable_mounts().items():
        mount(None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | (flags & _LOCKABLE))
    left = writable_mounts()
    if left:
        raise SetupFailed(f"still writable after remounting: {', '.join(sorted(left))}")


def drop_capabilities() -> None:
    """Step 6, then a check that no capability is left in any set."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for capability in range(last + 1):
        _check(_libc.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(capability), 0, 0, 0), "PR_CAPBSET_DROP")
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # fails only where none exist
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    with open("/proc/self/status") as handle:
        sets = [line.split(":") for line in handle if line.startswith(_CAPABILITY_SETS)]
    left = [name for name, value in sets if int(value, 16)]
    if left or len(sets) < 4:  # CapAmb is missing before Linux 4.3
        raise SetupFailed(f"capabilities left in {', '.join(left) or 'sets that cannot be read'}")


def main() -> None:
    """Entry point: ``<config json> -- <command>``."""
    config = json.loads(sys.argv[1])
    command = sys.argv[3:]
    try:
        if sys.argv[2] != "--" or not command:
            raise SetupFailed("usage: readonly <config json> -- <command>")
        os.chdir("/")
        hide_and_replace(config)
        forbid_user_namespaces()
        remount_read_only()
        drop_capabilities()
        os.execv(command[0], command)
    except (OSError, SetupFailed) as exc:
        print(f"chattasks sandbox: no read-only unshare sandbox here: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
