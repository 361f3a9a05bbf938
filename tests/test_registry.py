"""The task registry: names, defaults, user tasks, clear errors."""

from __future__ import annotations

import pytest

from chattasks import Task, UnknownTask, get_task, register_task, task_names
from chattasks.registry import get_entry, unregister_task


@pytest.fixture(autouse=True)
def _forget_test_tasks():
    yield
    for name in task_names():
        if name.startswith("test-"):
            unregister_task(name)


class Echo(Task):
    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    @property
    def eval_type(self):
        return "generative"

    def num_examples(self):
        return self.size

    def get_example(self, index):
        return {
            "messages": [
                {"role": "user", "content": str(index)},
                {"role": "assistant", "content": str(index)},
            ]
        }


def test_builtin_tasks_are_registered_by_their_user_facing_names():
    names = task_names()
    for name in [
        "ARC-Easy",
        "ARC-Challenge",
        "MMLU",
        "GSM8K",
        "HumanEval",
        "SmolTalk",
        "SpellingBee",
        "SimpleSpelling",
    ]:
        assert name in names


def test_unknown_task_lists_the_registered_names():
    with pytest.raises(UnknownTask, match="unknown task 'ARC-Medium'.*ARC-Easy.*GSM8K"):
        get_task("ARC-Medium")


def test_lookup_is_case_insensitive():
    assert get_entry("arc-easy").name == "ARC-Easy"


def test_users_register_their_own_tasks_with_defaults():
    register_task("test-echo", Echo, description="echo", size=4, replace=True)
    task = get_task("test-echo")
    assert isinstance(task, Echo) and len(task) == 4
    assert len(get_task("test-echo", size=7, start=2)) == 5
    assert "test-echo" in task_names()


def test_registering_a_taken_name_needs_replace():
    register_task("test-dup", Echo, replace=True)
    with pytest.raises(ValueError, match="already registered"):
        register_task("test-dup", Echo)


def test_a_task_can_be_registered_lazily_by_module_path():
    register_task("test-lazy", "chattasks.tasks.customjson:CustomJSON", replace=True)
    assert get_entry("test-lazy").factory().__name__ == "CustomJSON"


def test_unregister_removes_a_task():
    register_task("test-gone", Echo)
    unregister_task("test-gone")
    assert "test-gone" not in task_names()
    with pytest.raises(UnknownTask):
        unregister_task("test-gone")
