"""Removing what a program wrote, however deep it nested it or however tightly it locked it.

Used inside the sandbox after every run, and by the host for the temporary directory of an
``isolation="none"`` sandbox.
"""

from __future__ import annotations

import os
import re
import stat


def mount_points() -> list[str]:
    """Where something is mounted in this sandbox, in the kernel's order (parents first); the
    programs cannot change that."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            return [_unescape(line.split()[4]) for line in handle if len(line.split()) > 4]
    except OSError:
        return []


def _unescape(field: str) -> str:
    """A mountinfo path with its octal escapes (space, tab, newline, backslash) undone."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


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
