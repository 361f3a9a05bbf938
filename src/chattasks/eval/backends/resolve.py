"""From what a user names to a backend: which backend, which label, which options.

``evaluate_model`` accepts a Backend object, a Python function ``messages -> str`` (the callable
backend), a model name or path for a backend named by ``backend`` (default ``hf``), or None for
the embedded default model. Options are checked against the backend's ``OPTIONS`` declaration
and split into those that change results (compared when a run resumes) and operational ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chattasks.eval.backends import backend_class, backend_options
from chattasks.eval.backends.base import Backend
from chattasks.eval.backends.callable import CallableBackend, function_label


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run uses: its name, the model label for run.json, and its options split in two."""

    name: str
    label: str | None
    options: dict[str, Any] = field(default_factory=dict)
    """Options that change results (compared on resume)."""
    operational: dict[str, Any] = field(default_factory=dict)
    """Options that change only speed (a resumed run may change them)."""


def choose_backend(model: Any, backend: str | None, options: Mapping[str, Any]) -> BackendChoice:
    """Which backend ``model`` is evaluated with, without building it; ValueError/TypeError on misuse."""
    if isinstance(model, Backend) and not isinstance(model, str):
        if backend is not None or options:
            raise ValueError(
                "backend= and backend options apply only when model is a name or path, not a Backend"
            )
        label = model.describe().get("model")
        return BackendChoice(str(model.name), None if label is None else str(label))
    if callable(model) and not isinstance(model, str):
        if backend not in (None, "callable"):
            raise ValueError(f"a Python function is evaluated by the callable backend, not {backend!r}")
        name, label = "callable", options.get("label") or function_label(model)
    elif model is None or isinstance(model, str | os.PathLike):
        name, label = backend or "hf", None if model is None else os.fspath(model)
    else:
        raise TypeError(
            "model must be a Backend, a function messages -> str, a model name/path or None; "
            f"got {type(model).__name__}"
        )
    declared = {option.name: option for option in backend_options(name)}
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise ValueError(
            f"the {name!r} backend has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(declared) or 'none'}"
        )
    results = {k: v for k, v in options.items() if not declared[k].operational}
    operational = {k: v for k, v in options.items() if declared[k].operational}
    return BackendChoice(name, label, results, operational)


def build_backend(model: Any, choice: BackendChoice, batch_size: int | None = None) -> tuple[Backend, bool]:
    """The backend ``choice`` names, and whether the caller owns it (and so closes it).

    A backend that declares a ``batch_size`` option gets ``batch_size`` unless one was given.
    """
    if isinstance(model, Backend) and not isinstance(model, str):
        return model, False
    options = {**choice.options, **choice.operational}
    if choice.name == "callable":
        return CallableBackend(model, **options), True
    if batch_size is not None and "batch_size" not in options:
        if any(option.name == "batch_size" for option in backend_options(choice.name)):
            options["batch_size"] = batch_size
    return backend_class(choice.name)(model=choice.label, **options), True
