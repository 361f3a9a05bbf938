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
    assert chattasks.__all__ == [
        "ARC",
        "BackendError",
        "CallableBackend",
        "ChattasksError",
        "CustomJSON",
        "DataError",
        "DatasetNotFound",
        "EvalResults",
        "Failure",
        "GSM8K",
        "GenerationConfig",
        "HumanEval",
        "IncomparableRuns",
        "InvalidConversation",
        "JournalVersionError",
        "MMLU",
        "MalformedReply",
        "NotSupported",
        "Rejected",
        "RenderError",
        "ReportError",
        "Rows",
        "RunDirError",
        "SampleRecord",
        "SandboxError",
        "SandboxUnavailable",
        "SandboxWarning",
        "ServerLost",
        "SimpleSpelling",
        "SmolTalk",
        "SpecError",
        "SpellingBee",
        "Task",
        "TaskError",
        "TaskMixture",
        "TaskNotEvaluable",
        "TaskNotSupported",
        "TaskSequence",
        "ToolError",
        "UnknownBackend",
        "UnknownTask",
        "__version__",
        "build_task",
        "compare_runs",
        "conversation_problems",
        "default_eval_tasks",
        "evaluate_model",
        "get_task",
        "load_rows",
        "register_task",
        "regrade",
        "render_mc",
        "task_names",
        "validate_conversation",
        "validate_messages",
    ]


def test_every_exception_is_in_the_hierarchy_drawn_and_exported():
    import inspect

    from chattasks import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    warnings = [c for c in classes if issubclass(c, Warning)]
    assert classes and all(issubclass(c, errors.ChattasksError) for c in classes if c not in warnings)
    for cls in classes:
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} is not drawn in errors.py's docstring"
        assert cls.__name__ in chattasks.__all__, f"{cls.__name__} is not exported"
    # and no exception class of the package lives outside errors.py
    import importlib

    for name in (
        "chattasks.cli",
        "chattasks.eval.backends.openai",
        "chattasks.eval.regrade",
        "chattasks.sandbox.pool",
    ):
        importlib.import_module(name)

    outside = [
        f"{module.__name__}.{name}"
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("chattasks") and module is not errors
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == module.__name__
        and not name.startswith("_")  # private control flow that never leaves its module
        # code that runs inside the sandbox raises nothing a caller ever sees
        and not module.__name__.startswith("chattasks.sandbox._inside")
    ]
    assert outside == []


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


def test_the_sandbox_surface_is_pinned():
    import chattasks.sandbox as sandbox

    assert sandbox.__all__ == [
        "DEFAULT_MAX_OUTPUT",
        "DEFAULT_MEMORY_MB",
        "DEFAULT_TIMEOUT",
        "Isolation",
        "RunSummary",
        "SandboxPool",
        "SandboxResult",
        "SandboxWarning",
        "Status",
        "default_pool",
        "resolve_isolation",
        "run_program",
        "set_default_pool",
    ]
