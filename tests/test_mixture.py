"""TaskMixture and TaskSequence: every row once, a deterministic compact shuffle, nesting, grading."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from chattasks import Task, TaskError, TaskMixture, TaskSequence


class Numbers(Task):
    """Rows labelled with their task name, so a mixture's provenance is visible."""

    loads = 0

    def __init__(self, name: str, n: int, kind: str = "generative", **kwargs):
        super().__init__(**kwargs)
        Numbers.loads += 1
        self.name, self.n, self.kind = name, n, kind

    @property
    def eval_type(self):
        return self.kind

    def num_examples(self):
        return self.n

    def get_example(self, index):
        return {
            "messages": [
                {"role": "user", "content": f"{self.name} {index}"},
                {"role": "assistant", "content": self.name},
            ],
            "row": (self.name, index),
        }

    def evaluate(self, conversation, assistant_response):
        return int(assistant_response == self.name)


def rows(task):
    return [conversation["row"] for conversation in task]


def test_mixture_holds_every_row_of_every_task_exactly_once():
    a, b, c = Numbers("a", 5), Numbers("b", 7), Numbers("c", 1)
    mixture = TaskMixture([a, b, c])
    assert len(mixture) == 13
    assert sorted(rows(mixture)) == sorted(rows(a) + rows(b) + rows(c))


def test_mixture_order_is_the_seeded_numpy_permutation_of_the_concatenation():
    a, b = Numbers("a", 4), Numbers("b", 6)
    concatenation = rows(a) + rows(b)
    permutation = np.random.default_rng(42).permutation(10)
    assert rows(TaskMixture([a, b])) == [concatenation[i] for i in permutation]
    assert rows(TaskMixture([a, b])) == rows(TaskMixture([a, b], seed=42))
    assert rows(TaskMixture([a, b], seed=7)) != rows(TaskMixture([a, b]))


def test_mixture_actually_mixes_the_tasks():
    mixture = TaskMixture([Numbers("a", 500), Numbers("b", 500)])
    first_half = Counter(name for name, _ in rows(mixture[:500]))
    assert 200 < first_half["a"] < 300


def test_oversampling_by_listing_a_task_twice_reuses_the_object():
    Numbers.loads = 0
    a, b = Numbers("a", 3), Numbers("b", 3)
    mixture = TaskMixture([a, a, b])
    assert Numbers.loads == 2
    counts = Counter(rows(mixture))
    assert counts[("a", 0)] == 2 and counts[("b", 0)] == 1
    assert len(mixture) == 9


def test_mixture_of_views_uses_only_the_views_rows():
    mixture = TaskMixture([Numbers("a", 100, start=10, stop=13), Numbers("b", 10)[::5]])
    assert sorted(rows(mixture)) == [("a", 10), ("a", 11), ("a", 12), ("b", 0), ("b", 5)]


def test_mixture_index_is_compact_numpy_not_python_objects():
    mixture = TaskMixture([Numbers("a", 600_000), Numbers("b", 400_000)])
    assert isinstance(mixture.order, np.ndarray)
    assert mixture.order.nbytes <= 4 * 1_000_000
    assert mixture[999_999]["row"][0] in {"a", "b"}


def test_sequence_concatenates_in_order():
    a, b, c = Numbers("a", 2), Numbers("b", 0), Numbers("c", 3)
    sequence = TaskSequence([a, b, c])
    assert rows(sequence) == [("a", 0), ("a", 1), ("c", 0), ("c", 1), ("c", 2)]
    assert sequence[-1]["row"] == ("c", 2)


def test_composites_index_like_tasks():
    sequence = TaskSequence([Numbers("a", 3), Numbers("b", 3)])
    assert sequence[np.int32(4)]["row"] == ("b", 1)
    with pytest.raises(IndexError, match="6"):
        sequence[6]
    assert rows(sequence[1:5:2]) == [("a", 1), ("b", 0)]


def test_composites_nest():
    inner = TaskSequence([Numbers("a", 3), Numbers("b", 2)])
    outer = TaskMixture([inner, Numbers("c", 4)])
    assert sorted(rows(outer)) == sorted(rows(inner) + rows(Numbers("c", 4)))
    assert rows(TaskSequence([outer[:2], inner])) == rows(outer)[:2] + rows(inner)


def test_evaluate_delegates_to_the_task_that_produced_the_row():
    mixture = TaskMixture([TaskSequence([Numbers("a", 3)]), Numbers("b", 3)])
    for conversation in mixture:
        owner = conversation["row"][0]
        assert mixture.evaluate(conversation, owner) == 1
        assert mixture.evaluate(conversation, "zzz") == 0
    assert mixture.evaluate_at(0, mixture[0]["row"][0]) == 1


def test_evaluate_refuses_a_conversation_it_did_not_produce():
    mixture = TaskMixture([Numbers("a", 3)])
    with pytest.raises(TaskError, match="evaluate_at"):
        mixture.evaluate(Numbers("a", 3)[0], "a")


def test_locate_finds_the_leaf_task_and_row():
    a, b = Numbers("a", 3), Numbers("b", 3, start=1)
    sequence = TaskSequence([a, b])
    assert sequence.locate(4) == (b, 2)
    mixture = TaskMixture([sequence])
    task, row = mixture.locate(0)
    assert task.get_example(row)["row"] == mixture[0]["row"]


def test_eval_type_is_shared_or_refused():
    assert TaskMixture([Numbers("a", 1), Numbers("b", 1)]).eval_type == "generative"
    mixed = TaskMixture([Numbers("a", 1), Numbers("b", 1, kind="categorical")])
    with pytest.raises(TaskError, match="categorical"):
        mixed.eval_type  # noqa: B018


def test_composites_reject_non_tasks():
    with pytest.raises(TypeError, match=r"tasks\[1\]"):
        TaskMixture([Numbers("a", 1), [1, 2, 3]])


def test_a_view_of_a_mixture_reads_the_same_rows_and_shares_the_grading_memory():
    mixture = TaskMixture([Numbers("a", 6), Numbers("b", 6)])
    assert rows(mixture[3:9:2]) == rows(mixture)[3:9:2]
    assert rows(mixture[::-3]) == rows(mixture)[::-3]
    assert rows(TaskMixture([Numbers("a", 6), Numbers("b", 6)], start=2, stop=7)) == rows(mixture)[2:7]
    conversation = mixture[4:][1]
    assert mixture.evaluate(conversation, conversation["row"][0]) == 1
    with pytest.raises(IndexError, match="out of range"):
        mixture[4:][8]


def test_evaluate_remembers_only_the_most_recent_reads():
    mixture = TaskMixture([Numbers("a", 3000), Numbers("b", 3000)])
    first = mixture[0]
    kept = [mixture[i] for i in range(1, TaskMixture._OWNER_MEMORY + 1)]
    assert mixture.evaluate(kept[0], kept[0]["row"][0]) == 1
    assert mixture.evaluate(kept[-1], kept[-1]["row"][0]) == 1
    with pytest.raises(TaskError, match="not recently read"):
        mixture.evaluate(first, first["row"][0])


def test_a_pickled_mixture_reads_the_same_rows_and_carries_no_conversations():
    mixture = TaskMixture([Numbers("a", 40), Numbers("b", 60)])[10:90]
    empty_size = len(pickle.dumps(mixture))
    read = rows(mixture)
    restored = pickle.loads(pickle.dumps(mixture))
    assert len(pickle.dumps(mixture)) == empty_size
    assert rows(restored) == read
    assert restored.order.tolist() == np.random.default_rng(42).permutation(100).tolist()
    conversation = restored[5]
    assert restored.evaluate(conversation, conversation["row"][0]) == 1


def test_a_child_that_overrides_getitem_is_read_through_it():
    class Upper(Numbers):
        def __getitem__(self, index):
            conversation = super().__getitem__(index)
            return {**conversation, "row": (self.name.upper(), conversation["row"][1])}

    mixture = TaskMixture([Upper("a", 3, start=1), Numbers("b", 2)])
    assert sorted(rows(mixture)) == [("A", 1), ("A", 2), ("b", 0), ("b", 1)]
