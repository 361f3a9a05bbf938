"""GSM8K: nanochat's tool-call parts row for row, and numeric grading that counts extraction failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nanochat_reference import digest

from chattasks.conversation import validate_conversation
from chattasks.errors import DatasetNotFound
from chattasks.registry import get_task
from chattasks.tasks.gsm8k import GSM8K, answer_parts, extract_answer, normalize_number, row_to_conversation

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "gsm8k" / "reference.json").read_text())
SPLITS = [key for key in REFERENCE if not key.startswith("_")]
HUB_ROWS = {"train": 7473, "test": 1319}


@pytest.fixture(scope="module")
def main_test(hub_dir):
    return GSM8K("main", "test", data_dir=hub_dir)


@pytest.mark.parametrize("key", SPLITS)
def test_conversations_are_nanochats(hub_dir, key):
    """Every conversation equals nanochat's (datasets .shuffle(seed=42) + its tasks/gsm8k.py), in order."""
    subset, split = key.split("/")
    task = GSM8K(subset, split, data_dir=hub_dir)
    conversations = list(task)
    for conversation in conversations:
        validate_conversation(conversation)
        assert (
            task.evaluate(conversation, conversation["messages"][-1]["content"]) == 1
        )  # the gold answer grades 1
    assert conversations[0] == REFERENCE[key]["first"]
    assert len(conversations) == REFERENCE[key]["rows"] == HUB_ROWS[split]
    assert digest(conversations) == REFERENCE[key]["sha256"]


def text(t: str) -> dict[str, str]:
    return {"type": "text", "text": t}


def call(expression: str, output: str) -> list[dict[str, str]]:
    return [{"type": "python", "text": expression}, {"type": "python_output", "text": output}]


@pytest.mark.parametrize(
    ("answer", "parts"),
    [
        ("No calls here.\n#### 5", [text("No calls here.\n#### 5")]),
        ("a <<2+3=5>>5 b\n#### 5", [text("a "), *call("2+3", "5"), text("5 b\n#### 5")]),
        (
            "<<1+1=2>><<2*2=4>>\n#### 4",
            [text(""), *call("1+1", "2"), text(""), *call("2*2", "4"), text("\n#### 4")],
        ),
        ("x <<3=2+1=3>>", [text("x "), *call("3=2+1", "3"), text("")]),  # split on the LAST '='
        ("x <<4*5>> y", [text("x "), *call("4*5", ""), text(" y")]),  # no '=': empty output
        ("", [text("")]),
    ],
)
def test_answer_parts(answer, parts):
    assert answer_parts(answer) == parts
    conversation = row_to_conversation({"question": "q", "answer": answer})
    validate_conversation(conversation)
    assert conversation["messages"][1]["content"] == parts


@pytest.mark.parametrize(
    ("response", "number"),
    [
        ("#### 10", "10"),
        ("so the total is 10.\n#### 10.00", "10"),
        ("#### 1,000", "1000"),
        ("#### 1 000", "1000"),
        ("#### -3.0", "-3"),
        ("#### $5", "5"),
        ("#### $ 1,234.50", "1234.5"),
        ("#### 5.", "5"),
        ("#### .5", "0.5"),
        ("#### -0", "0"),
        ("####7", "7"),
        ("#### 18 dollars", "18"),
        ("#### 3\nthen\n#### 4", "4"),  # the LAST marker counts
        ("#### 4\n#### none", None),  # ... even when it holds no number
        ("The answer is 10", None),
        ("#### ", None),
        ("#### ten", None),
        ("", None),
    ],
)
def test_extract_answer(response, number):
    assert extract_answer(response) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("10", "10"),
        ("10.00", "10"),
        ("+7", "7"),
        ("0.050", "0.05"),
        ("1e3", "1"),
        ("$-2", "-2"),
        ("-", None),
        ("", None),
    ],
)
def test_normalize_number(text, number):
    assert normalize_number(text) == number


GOLD_10 = row_to_conversation({"question": "q", "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2.\n#### 10"})
GOLD_1000 = row_to_conversation({"question": "q", "answer": "It is 1,000.\n#### 1,000"})
NO_GOLD = row_to_conversation({"question": "q", "answer": "no marker"})


@pytest.mark.parametrize(
    ("conversation", "response", "score"),
    [
        (GOLD_10, "... #### 10", 1),
        (GOLD_10, "#### 10.00", 1),
        (GOLD_10, "#### 10.", 1),
        (GOLD_10, "#### $10", 1),
        (GOLD_10, "#### 11", 0),
        (GOLD_10, "10", 0),  # no marker: an extraction failure
        (GOLD_10, "", 0),
        (GOLD_10, "#### 10\n#### 11", 0),
        (GOLD_10, "#### 11\n#### 10", 1),
        (GOLD_10, [text("so "), *call("5*2", "10"), text("10\n#### 10")], 1),  # parts, like message content
        (GOLD_1000, "#### 1000", 1),
        (GOLD_1000, "#### 1,000.0", 1),
        (NO_GOLD, "no marker either", 0),  # never "None equals None"
    ],
)
def test_grading(conversation, response, score):
    task = GSM8K.__new__(GSM8K)  # grading needs no data
    assert task.evaluate(conversation, response) == score
    assert task.reward(conversation, response) == float(score)
    assert isinstance(task.reward(conversation, response), float)


def test_extract_tells_failures_from_wrong_answers():
    task = GSM8K.__new__(GSM8K)
    assert task.extract(GOLD_10, "#### 11") == "11"
    assert task.extract(GOLD_10, "eleven") is None


@pytest.mark.parametrize(("subset", "split"), [("Main", "test"), ("socratic", "validation"), ("main", "dev")])
def test_bad_arguments_list_the_valid_ones(subset, split):
    with pytest.raises(ValueError, match="main, socratic|train, test"):
        GSM8K(subset, split, data_dir="/nonexistent")


def test_missing_data_is_dataset_not_found(tmp_path):
    with pytest.raises(DatasetNotFound, match="gsm8k"):
        GSM8K("main", "test", data_dir=tmp_path)


def test_slicing_registry_and_nanochat_import(hub_dir, main_test):
    from tasks.gsm8k import GSM8K as ShimGSM8K
    from tasks.gsm8k import extract_answer as shim_extract

    assert ShimGSM8K is GSM8K and shim_extract is extract_answer
    assert main_test.eval_type == "generative" and main_test.num_examples() == 1319
    assert len(main_test[1300:]) == 19 and main_test[1300:][0] == main_test[1300]
    assert get_task("GSM8K", data_dir=hub_dir)[0] == main_test[0]
    assert len(GSM8K("socratic", "train", data_dir=hub_dir, start=7000, step=100)) == 5
