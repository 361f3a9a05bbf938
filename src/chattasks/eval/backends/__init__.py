"""Model backends: one small interface (``base.Backend``), one file per backend.

``BACKENDS`` maps a backend's user-facing name to ``"module:Class"``; adding a backend is one
new file plus one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

from chattasks.errors import BackendError

BACKENDS: dict[str, str] = {
    "hf": "chattasks.eval.backends.hf:HFBackend",
    "openai": "chattasks.eval.backends.openai:OpenAIBackend",
    "callable": "chattasks.eval.backends.callable:CallableBackend",
}


def backend_class(name: str) -> Any:
    """The class registered as backend ``name``; BackendError lists the known names."""
    target = BACKENDS.get(name)
    if target is None:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
