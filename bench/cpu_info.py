"""One line describing the machine a benchmark ran on: CPU model, cores, SIMD features, Python, numpy."""

from __future__ import annotations

import os
import platform
import sys

# the features that change how fast numpy, pyarrow and torch run here
FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "asimd",
    "sve",
)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def cpu_line() -> str:
    """``CPU: <model>, <n> cores, features: avx2 ...; Python x.y.z, numpy a.b.c`` for this machine."""
    model, flags = _cpuinfo()
    features = " ".join(f for f in FEATURES if f in flags) or "unknown"
    try:
        import numpy

        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = "absent"
    return (
        f"CPU: {model}, {os.cpu_count()} cores, features: {features}; "
        f"Python {sys.version.split()[0]}, numpy {numpy_version}"
    )


if __name__ == "__main__":
    print(cpu_line())
