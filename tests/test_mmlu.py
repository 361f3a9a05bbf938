"""MMLU: nanochat's conversations row for row, both spellings of auxiliary_train, grading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nanochat_reference import digest, nanochat_view

import chattasks.tasks.mmlu as mmlu_module
from chattasks.conversation import validate_conversation
from chattasks.errors import DataError, DatasetNotFound
from chattasks.registry import get_task
from chattasks.tasks.mmlu import LETTERS, MMLU, SUBJECTS, hub_split, row_to_conversation

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "mmlu" / "reference.json").read_text())
SPLITS = [key for key in REFERENCE if not key.startswith("_")]
HUB_ROWS = {"dev": 285, "validation": 1531, "test": 14042, "auxiliary_train": 99842}


# chattasks adds "question" and "choices" for loglik scoring
NANOCHAT_KEYS = ("messages", "subject", "letters")


@pytest.fixture(scope="module")
def mmlu_test(hub_dir):
    return MMLU("all", "test", data_dir=hub_dir)


@pytest.mark.parametrize("key", SPLITS)
def test_conversations_are_nanochats(hub_dir, key):
    """Every conversation equals nanochat's (datasets .shuffle(seed=42) + its tasks/mmlu.py), in order."""
    subset, split = key.split("/")
    conversations = list(MMLU(subset, split, data_dir=hub_dir))
    for conversation in conversations:
        validate_conversation(conversation)
        assert conversation["letters"] == LETTERS and conversation["subject"] in SUBJECTS
    assert json.loads(json.dumps(nanochat_view(conversations[0], NANOCHAT_KEYS))) == REFERENCE[key]["first"]
    assert len(conversations) == REFERENCE[key]["rows"] == HUB_ROWS[split]
    assert digest(conversations, NANOCHAT_KEYS) == REFERENCE[key]["sha256"]


def test_subjects_are_the_57_of_the_test_split(mmlu_test):
    assert MMLU.groups == SUBJECTS == tuple(sorted({c["subject"] for c in mmlu_test}))
    assert len(SUBJECTS) == 57 and MMLU.letters == ("A", "B", "C", "D")


@pytest.mark.parametrize("subset, split", [("all", "auxiliary_train"), ("auxiliary_train", "train")])
def test_auxiliary_train_on_the_mirror(hub_dir, subset, split):
    try:
        task = MMLU(subset, split, data_dir=hub_dir)
    except DatasetNotFound as exc:
        pytest.skip(f"the local mirror lacks MMLU auxiliary_train: {exc}")
    assert len(task) == HUB_ROWS["auxiliary_train"]


def test_both_spellings_of_auxiliary_train_read_the_all_config(monkeypatch):
    asked = []

    def fake_load_rows(dataset_id, config, split, *, data_dir=None):
        asked.append((dataset_id, config, split, data_dir))
        return []

    monkeypatch.setattr(mmlu_module, "load_rows", fake_load_rows)
    MMLU("auxiliary_train", "train", data_dir="d")
    MMLU("all", "auxiliary_train", data_dir="d")
    MMLU("all", "test")
    assert asked == [("cais/mmlu", "all", "auxiliary_train", "d")] * 2 + [("cais/mmlu", "all", "test", None)]


def test_both_spellings_read_a_local_hub_folder(tmp_path):
    folder = tmp_path / "cais" / "mmlu" / "all"
    folder.mkdir(parents=True)
    rows = [
        {"question": f"q{i}", "subject": "", "choices": ["w", "x", "y", "z"], "answer": i % 4}
        for i in range(7)
    ]
    (folder / "auxiliary_train-00000-of-00001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    documented = list(MMLU("auxiliary_train", "train", data_dir=tmp_path))
    assert documented == list(MMLU("all", "auxiliary_train", data_dir=tmp_path))
    assert sorted(c["messages"][0]["content"].split("\n")[0] for c in documented) == [
        f"Multiple Choice question: q{i}" for i in range(7)
    ]


@pytest.mark.parametrize(
    ("subset", "split"),
    [
        ("auxiliary_train", "test"),
        ("all", "train"),
        ("abstract_algebra", "test"),
        ("all", "Test"),
        (None, "test"),
    ],
)
def test_bad_combinations_list_the_valid_ones(subset, split):
    with pytest.raises(
        ValueError, match=r"valid: subset='all' split='dev'.*subset='auxiliary_train' split='train'"
    ):
        MMLU(subset, split, data_dir="/nonexistent")
    with pytest.raises(ValueError):
        hub_split(subset, split)


def test_row_to_conversation():
    row = {
        "question": "2+2?",
        "subject": "elementary_mathematics",
        "choices": ["3", "4", "5", "22"],
        "answer": 1,
    }
    assert row_to_conversation(row) == {
        "messages": [
            {
                "role": "user",
                "content": "Multiple Choice question: 2+2?\n- 3=A\n- 4=B\n- 5=C\n- 22=D\n\n"
                "Respond only with the letter of the correct answer.",
            },
            {"role": "assistant", "content": "B"},
        ],
        "subject": "elementary_mathematics",
        "letters": ("A", "B", "C", "D"),
        "question": "2+2?",
        "choices": ["3", "4", "5", "22"],
    }


@pytest.mark.parametrize(
    "choices, answer", [(["a", "b", "c"], 0), (["a", "b", "c", "d", "e"], 0), (["a"] * 4, 4)]
)
def test_malformed_rows_are_data_errors(choices, answer):
    with pytest.raises(DataError, match="expected 4 choices"):
        row_to_conversation({"question": "q", "subject": "s", "choices": choices, "answer": answer})


GOLD_C = row_to_conversation({"question": "q", "subject": "s", "choices": ["w", "x", "y", "z"], "answer": 2})


@pytest.mark.parametrize(
    ("response", "score", "extracted"),
    [
        ("C", 1, "C"),
        ("\tC \n", 1, "C"),
        ("A", 0, "A"),
        ("c", 0, None),
        ("(C)", 0, None),
        ("E", 0, None),
        ("", 0, None),
        ("C.", 0, None),
        ("3", 0, None),
    ],
)
def test_grading(response, score, extracted):
    task = MMLU.__new__(MMLU)  # grading needs no data
    assert task.evaluate(GOLD_C, response) == score
    assert task.reward(GOLD_C, response) == float(score)
    assert task.extract(GOLD_C, response) == extracted


def test_slicing_registry_and_nanochat_import(hub_dir, mmlu_test):
    from tasks.mmlu import MMLU as ShimMMLU

    assert ShimMMLU is MMLU and mmlu_test.eval_type == "categorical"
    assert len(mmlu_test[:100:7]) == 15 and mmlu_test[:100:7][2] == mmlu_test[14]
    assert len(MMLU("all", "dev", data_dir=hub_dir, stop=10)) == 10
    assert get_task("MMLU", data_dir=hub_dir)[0] == mmlu_test[0]
