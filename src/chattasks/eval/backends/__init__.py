"""Model backends: one small interface (``base.Backend``), one file per backend.

``BACKENDS`` maps a backend's user-facing name to ``"module:Class"``; adding a backend is one
new file plus one line here. Each backend class declares its constructor options in ``OPTIONS``;
``chattasks.eval.backends.resolve`` builds a backend from a model and those options.
"""

from __future__ import annotations

import importlib
from typing import Any

from chattasks.errors import UnknownBackend
from chattasks.eval.backends.base import BackendOption

BACKENDS: dict[str, str] = {
    "hf": "chattasks.eval.backends.hf:HFBackend",
    "openai": "chattasks.eval.backends.openai:OpenAIBackend",
    "callable": "chattasks.eval.backends.callable:CallableBackend",
}


def backend_class(name: str) -> Any:
    """The class registered as backend ``name``; UnknownBackend lists the known names."""
    target = BACKENDS.get(name)
    if target is None:
        raise UnknownBackend(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def backend_options(name: str) -> tuple[BackendOption, ...]:
    """The options backend ``name`` declares."""
    options: tuple[BackendOption, ...] = backend_class(name).OPTIONS
    return options
