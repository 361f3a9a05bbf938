"""The Task base class: nanochat-style subclasses, views, slicing, indexing and grading."""

from __future__ import annotations

import numpy as np
import pytest

from chattasks import Task, TaskNotEvaluable


class Squares(Task):
    """A tiny nanochat-style task: super().__init__ first, data loaded afterwards."""

    def __init__(self, n: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.data = [i * i for i in range(n)]

    @property
    def eval_type(self):
        return "generative"

    def num_examples(self):
        return len(self.data)

    def get_example(self, index):
        value = self.data[index]
        return {
            "messages": [
                {"role": "user", "content": f"square {index}"},
                {"role": "assistant", "content": str(value)},
            ],
            "value": value,
        }

    def evaluate(self, conversation, assistant_response):
        return int(assistant_response.strip() == str(conversation["value"]))


class Chat(Task):
    """A training-only task: no evaluate."""

    @property
    def eval_type(self):
        return "generative"

    def num_examples(self):
        return 3

    def get_example(self, index):
        return {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": str(index)}]}


def values(task):
    return [row["value"] for row in task]


def test_subclass_written_the_nanochat_way_works_unchanged():
    task = Squares(5)
    assert len(task) == 5 and task.num_examples() == 5
    assert task[3]["messages"][1]["content"] == "9"
    assert task.eval_type == "generative"


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"start": -1}, "start must be >= 0, got -1"),
        ({"step": 0}, "step must be >= 1, got 0"),
        ({"start": 5, "stop": 2}, "stop must be >= start .5., got 2"),
    ],
)
def test_bad_view_bounds_raise_value_error_naming_the_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        Squares(10, **kwargs)


def test_view_bounds_must_be_integers():
    with pytest.raises(TypeError, match="start"):
        Squares(10, start=1.5)


def test_start_stop_step_select_a_view():
    task = Squares(10, start=2, stop=9, step=3)
    assert len(task) == 3
    assert values(task) == [4, 25, 64]
    assert task.num_examples() == 10


def test_stop_beyond_the_dataset_is_clamped():
    assert len(Squares(10, stop=10**18)) == 10
    assert len(Squares(10, start=8, stop=10**6)) == 2
    assert len(Squares(10, start=20, stop=30)) == 0


def test_index_accepts_numpy_and_negative_integers():
    task = Squares(10)
    assert task[np.int64(4)]["value"] == 16
    assert task[np.uint8(2)]["value"] == 4
    assert task[-1]["value"] == 81
    assert task[-10]["value"] == 0


@pytest.mark.parametrize("index", [10, -11, 1000])
def test_out_of_range_index_names_index_and_length(index):
    with pytest.raises(IndexError, match=rf"{index}.*10"):
        Squares(10)[index]


def test_non_integer_index_is_a_type_error():
    with pytest.raises(TypeError):
        Squares(10)[1.0]


@pytest.mark.parametrize(
    "key",
    [
        slice(2, 8),
        slice(None, None, 2),
        slice(-3, None),
        slice(1, 9, 3),
        slice(None, None, -1),
        slice(8, 1, -2),
        slice(50, 60),
    ],
)
def test_slices_match_python_list_slicing(key):
    assert values(Squares(10)[key]) == [i * i for i in range(10)][key]


def test_views_compose_and_share_the_data():
    task = Squares(20)
    view = task[2:18][::2][1:-1]
    assert values(view) == [i * i for i in range(20)][2:18][::2][1:-1]
    assert view.data is task.data
    assert isinstance(view, Squares)
    assert len(task) == 20  # the original is untouched


def test_slicing_a_sliced_constructor_view():
    view = Squares(20, start=5, step=2)[1:4]
    assert values(view) == [49, 81, 121]


def test_iteration_yields_the_view_in_order():
    assert values(Squares(6, start=1)) == [1, 4, 9, 16, 25]


def test_evaluate_and_reward():
    task = Squares(5)
    conversation = task[3]
    assert task.evaluate(conversation, " 9 ") == 1
    assert task.evaluate(conversation, "8") == 0
    assert task.reward(conversation, "9") == 1.0 and isinstance(task.reward(conversation, "9"), float)
    assert task.is_evaluable


def test_training_only_task_says_so():
    task = Chat()
    assert not task.is_evaluable
    with pytest.raises(TaskNotEvaluable, match="training-only"):
        task.evaluate(task[0], "anything")
    with pytest.raises(NotImplementedError):
        task.reward(task[0], "anything")


def test_base_class_methods_must_be_overridden():
    task = Task()
    with pytest.raises(NotImplementedError, match="eval_type"):
        task.eval_type  # noqa: B018
    with pytest.raises(NotImplementedError, match="num_examples"):
        len(task)


def test_locate_names_the_task_and_physical_row():
    task = Squares(10, start=2, step=2)
    assert task.locate(1) == (task, 4)


def test_default_extract_is_the_stripped_response_or_none():
    task = Squares(3)
    assert task.extract(task[0], "  42 \n") == "42"
    assert task.extract(task[0], "   ") is None
