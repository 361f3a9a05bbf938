"""Test helper: the processes on this host whose command line mentions a marker (read from /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def processes_mentioning(marker: str) -> list[int]:
    """Pids of the host's processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found
