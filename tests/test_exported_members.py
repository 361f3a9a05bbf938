"""The public surface: declared once, sorted, importable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import chattasks


def test_all_is_sorted_and_every_name_resolves():
    assert chattasks.__all__ == sorted(chattasks.__all__)
    for name in chattasks.__all__:
        assert getattr(chattasks, name) is not None, name


def test_public_surface_is_pinned():
    assert set(chattasks.__all__) >= {
        "Task",
        "TaskMixture",
        "TaskSequence",
        "render_mc",
        "CustomJSON",
        "load_rows",
        "register_task",
        "get_task",
        "validate_conversation",
        "ChattasksError",
        "__version__",
    }


def test_import_is_light():
    code = "import sys, chattasks; print(sorted(m for m in ('numpy', 'pyarrow', 'torch', 'typer', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_nanochat_imports_work_verbatim():
    from tasks.common import Task, TaskMixture, TaskSequence, render_mc
    from tasks.customjson import CustomJSON

    assert Task is chattasks.Task and TaskMixture is chattasks.TaskMixture
    assert TaskSequence is chattasks.TaskSequence and render_mc is chattasks.render_mc
    assert CustomJSON is chattasks.CustomJSON
