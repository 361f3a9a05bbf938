"""ARC: nanochat's conversations row for row, numeric labels, grading that never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nanochat_reference import digest, nanochat_view

from chattasks.conversation import validate_conversation
from chattasks.errors import DataError, DatasetNotFound
from chattasks.registry import get_task
from chattasks.tasks.arc import ARC, row_to_conversation
from chattasks.tasks.multiple_choice import extract_choice

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "arc" / "reference.json").read_text())
SPLITS = [key for key in REFERENCE if not key.startswith("_")]
HUB_ROWS = {
    ("ARC-Easy", "train"): 2251,
    ("ARC-Easy", "validation"): 570,
    ("ARC-Easy", "test"): 2376,
    ("ARC-Challenge", "train"): 1119,
    ("ARC-Challenge", "validation"): 299,
    ("ARC-Challenge", "test"): 1172,
}
MIRROR_PARTIAL = {("ARC-Challenge", "train"): 1056}  # ../shared/data/hub holds only part of this split


NANOCHAT_KEYS = ("messages", "letters")  # chattasks adds "question" and "choices" for loglik scoring


@pytest.fixture(scope="module")
def easy_test(hub_dir):
    return ARC("ARC-Easy", "test", data_dir=hub_dir)


@pytest.mark.parametrize("key", SPLITS)
def test_conversations_are_nanochats(hub_dir, key):
    """Every conversation equals nanochat's (datasets .shuffle(seed=42) + its tasks/arc.py), in order."""
    subset, split = key.split("/")
    conversations = list(ARC(subset, split, data_dir=hub_dir))
    for conversation in conversations:
        validate_conversation(conversation)
    assert json.loads(json.dumps(nanochat_view(conversations[0], NANOCHAT_KEYS))) == REFERENCE[key]["first"]
    assert len(conversations) == REFERENCE[key]["rows"]
    assert digest(conversations, NANOCHAT_KEYS) == REFERENCE[key]["sha256"]


@pytest.mark.parametrize(("subset", "split"), list(HUB_ROWS))
def test_row_counts(hub_dir, subset, split):
    try:
        task = ARC(subset, split, data_dir=hub_dir)
    except DatasetNotFound as exc:
        pytest.skip(f"the local mirror lacks {subset}/{split}: {exc}")
    assert task.num_examples() == len(task) == MIRROR_PARTIAL.get((subset, split), HUB_ROWS[subset, split])


def test_numeric_labels_are_the_letters(easy_test):
    numeric = [c for c in easy_test if c["letters"][0] == "1"]
    assert len(numeric) == 97
    conversation = numeric[0]
    letters, user, answer = (
        conversation["letters"],
        conversation["messages"][0]["content"],
        conversation["messages"][1]["content"],
    )
    assert letters == [str(i) for i in range(1, len(letters) + 1)]
    assert all(f"={letter}\n" in user for letter in letters) and "=A\n" not in user
    assert easy_test.evaluate(conversation, answer) == 1
    assert easy_test.evaluate(conversation, "A") == 0


def test_letters_follow_the_row():
    row = {
        "id": "x",
        "question": "Pick",
        "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]},
        "answerKey": "C",
    }
    conversation = row_to_conversation(row)
    assert conversation["messages"][0]["content"] == (
        "Multiple Choice question: Pick\n- a=A\n- b=B\n- c=C\n\nRespond only with the letter of the correct answer."
    )
    assert conversation["messages"][1] == {"role": "assistant", "content": "C"}
    assert conversation["letters"] == ["A", "B", "C"]


def test_answer_key_outside_the_labels_is_a_data_error():
    row = {
        "id": "bad",
        "question": "?",
        "choices": {"text": ["a", "b"], "label": ["A", "B"]},
        "answerKey": "C",
    }
    with pytest.raises(DataError, match="'bad'.*'C'"):
        row_to_conversation(row)


ROW = {
    "id": "t",
    "question": "Q",
    "choices": {"text": ["w", "x", "y", "z"], "label": ["A", "B", "C", "D"]},
    "answerKey": "B",
}
NUMERIC_ROW = {
    "id": "n",
    "question": "Q",
    "choices": {"text": ["w", "x", "y", "z"], "label": ["1", "2", "3", "4"]},
    "answerKey": "2",
}


@pytest.mark.parametrize(
    ("row", "response", "score", "extracted"),
    [
        (ROW, "B", 1, "B"),
        (ROW, " B\n", 1, "B"),  # surrounding whitespace is stripped
        (ROW, "A", 0, "A"),
        (ROW, "b", 0, None),  # case matters
        (ROW, "B)", 0, None),  # nothing but whitespace is stripped
        (ROW, "The answer is B", 0, None),
        (ROW, "E", 0, None),  # not one of the letters: 0, never an exception
        (ROW, "", 0, None),
        (ROW, "2", 0, None),
        (NUMERIC_ROW, "2", 1, "2"),
        (NUMERIC_ROW, "B", 0, None),
    ],
)
def test_grading(row, response, score, extracted):
    task = ARC.__new__(ARC)  # grading needs no data
    conversation = row_to_conversation(row)
    assert task.evaluate(conversation, response) == score
    assert task.reward(conversation, response) == float(score)
    assert task.extract(conversation, response) == extracted
    assert extract_choice(response, conversation["letters"]) == extracted


def test_extract_choice_refuses_a_non_string():
    assert extract_choice(None, ["A"]) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subset", "split"), [("ARC-Medium", "test"), ("arc-easy", "test"), ("ARC-Easy", "dev")]
)
def test_bad_arguments_list_the_valid_ones(subset, split):
    with pytest.raises(ValueError, match="ARC-Easy, ARC-Challenge|train, validation, test"):
        ARC(subset, split, data_dir="/nonexistent")


def test_missing_data_is_dataset_not_found(tmp_path):
    with pytest.raises(DatasetNotFound, match="ARC-Easy"):
        ARC("ARC-Easy", "test", data_dir=tmp_path)


def test_slicing_and_views(hub_dir, easy_test):
    assert easy_test.eval_type == "categorical"
    view = easy_test[10:20:3]
    assert len(view) == 4 and view[1] == easy_test[13]
    part = ARC("ARC-Easy", "test", data_dir=hub_dir, start=5, stop=8)
    assert len(part) == 3 and part[0] == easy_test[5]


def test_data_dir_from_the_environment(hub_dir, monkeypatch, easy_test):
    monkeypatch.setenv("CHATTASKS_DATA_DIR", str(hub_dir))
    assert ARC("ARC-Easy", "test")[0] == easy_test[0]


def test_registry_and_nanochat_import(hub_dir, easy_test):
    from tasks.arc import ARC as ShimARC

    assert ShimARC is ARC
    task = get_task("ARC-Easy", data_dir=hub_dir)
    assert isinstance(task, ARC) and task[0] == easy_test[0]
