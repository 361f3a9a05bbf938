"""SpellingBee and SimpleSpelling: deterministic per (split, index), train and test apart, graded like GSM8K."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from chattasks import SimpleSpelling, SpellingBee, get_task, validate_conversation
from chattasks.tasks.spellingbee import (
    PHRASINGS,
    SEED_BLOCK,
    example_seed,
)
from chattasks.tools.calculator import calculate
from chattasks.wordlist import WORDS_ENV, load_words

TASKS = (SpellingBee, SimpleSpelling)


@pytest.fixture
def small_words(fixtures_dir):
    return fixtures_dir / "spellingbee" / "words.txt"


def _user(conversation):
    return conversation["messages"][0]["content"]


# ----- seeds ---------------------------------------------------------------------------------
def test_seeds_below_ten_million_are_nanochats():
    assert [example_seed("train", i) for i in (0, 7, SEED_BLOCK - 1)] == [0, 7, SEED_BLOCK - 1]
    assert [example_seed("test", i) for i in (0, 7)] == [SEED_BLOCK, SEED_BLOCK + 7]


def test_train_and_test_never_share_a_seed():
    near_edges = [b * SEED_BLOCK + d for b in range(6) for d in (-2, -1, 0, 1, 2) if b * SEED_BLOCK + d >= 0]
    indices = sorted({*range(2000), *near_edges, *random.Random(1).sample(range(10**12), 2000)})
    train = [example_seed("train", i) for i in indices]
    test = [example_seed("test", i) for i in indices]
    assert len(set(train)) == len(set(test)) == len(indices)  # one seed per index within a split
    assert not set(train) & set(test)
    assert all((seed // SEED_BLOCK) % 2 == 0 for seed in train) and all((s // SEED_BLOCK) % 2 for s in test)


def test_seed_arguments_are_checked():
    with pytest.raises(ValueError):
        example_seed("validation", 0)
    with pytest.raises(ValueError):
        example_seed("train", -1)


# ----- the real word list ------------------------------------------------------------------
def test_first_examples_with_the_real_word_list(words_file):
    words = load_words(words_file)
    assert len(words) == 370_099
    assert random.Random(0).choice(list(words)) == "nonclastic"  # nanochat's first draw for train 0
    bee = SpellingBee(split="train", words_path=words_file)
    assert _user(bee[0]) == "how many \"s\" does the word 'nonclastic' contain?"
    assert bee[0]["messages"][1]["content"][-1]["text"].endswith("#### 1")
    simple = SimpleSpelling(split="train", words_path=words_file)
    assert simple[0]["messages"] == [
        {"role": "user", "content": "Spell the word: wombats"},
        {"role": "assistant", "content": "wombats:w,o,m,b,a,t,s"},
    ]


def test_every_conversation_validates_and_the_answer_is_right(words_file):
    for split in ("train", "test"):
        bee = SpellingBee(size=1000, split=split, words_path=words_file)
        in_word = 0
        for conversation in bee:
            validate_conversation(conversation)
            parts = conversation["messages"][1]["content"]
            assert [p["type"] for p in parts] == ["text", "text", "python", "python_output", "text"]
            word, letter = parts[2]["text"][1:-12], parts[2]["text"][-3]
            assert parts[2]["text"] == f"'{word}'.count('{letter}')"
            count = word.count(letter)
            assert f"\n{word}:{','.join(word)}\n" in parts[0]["text"]
            assert parts[0]["text"].count(" match, count=") == count
            assert parts[3]["text"] == str(count) and parts[4]["text"].endswith(f"#### {count}")
            assert bee.evaluate(conversation, f"... #### {count}") == 1
            in_word += letter in word
        assert 850 <= in_word <= 950  # 90% of letters come from the word
        for conversation in SimpleSpelling(size=1000, split=split, words_path=words_file):
            validate_conversation(conversation)


def test_the_python_part_evaluates_to_its_output_on_the_calculator(words_file, small_words):
    for path in (words_file, small_words):  # the small list has "don't" and a non-ASCII word
        for conversation in SpellingBee(size=300, words_path=path):
            parts = conversation["messages"][1]["content"]
            assert calculate(parts[2]["text"]) == int(parts[3]["text"])


def _examples(split):  # also run in a fresh process below, with the word list named by the env var
    bee, simple = SpellingBee(size=50, split=split), SimpleSpelling(size=50, split=split)
    return json.dumps([[bee[i], simple[i]] for i in (0, 1, 49)], ensure_ascii=False)


def test_examples_are_the_same_in_a_fresh_process(words_file, monkeypatch):
    monkeypatch.setenv(WORDS_ENV, str(words_file))
    here = [_examples("train"), _examples("test")]
    script = "from test_spellingbee import _examples; print(_examples('train')); print(_examples('test'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, encoding="utf-8", check=True
    )
    assert out.stdout.splitlines() == here and here[0] != here[1]


def test_train_and_test_are_different_streams(words_file):
    for task in TASKS:
        train = [_user(c) for c in task(size=500, split="train", words_path=words_file)]
        test = [_user(c) for c in task(size=500, split="test", words_path=words_file)]
        assert sum(a == b for a, b in zip(train, test)) == 0
        assert len(set(train) & set(test)) < 10  # only chance repeats of a word among 370K


# ----- generation on a small list ----------------------------------------------------------
def test_an_example_depends_only_on_split_and_index(small_words):
    for task in TASKS:
        big = task(size=100, split="test", words_path=small_words)
        small = task(size=5, split="test", words_path=small_words, start=2)
        assert small[0] == big[2] and big[7] == big[7] and big[1:8:3][2] == big[7]


def test_phrasings_are_many_and_multilingual():
    assert len(PHRASINGS) == 51 == len(set(PHRASINGS))  # 51 keeps the random draws aligned with nanochat
    assert all(p.count("{l}") == 1 and p.count("{w}") == 1 for p in PHRASINGS)
    for marker in ("Cuántas", "多少", "몇", "Combien", "Wie", "いくつ"):
        assert any(marker in p for p in PHRASINGS)


def test_questions_vary_in_casing_quoting_and_punctuation(words_file):
    users = [_user(c) for c in SpellingBee(size=2000, words_path=words_file)]
    assert sum(u.endswith("?") for u in users) in range(900, 1100)
    assert any(u.startswith("how many") for u in users) and any(u.startswith("How many") for u in users)
    assert any('"' in u for u in users) and any("'" in u for u in users)
    assert len({u.split(" ")[0] for u in users}) > 30


def test_spellingbee_grades_with_the_gsm8k_extractor(small_words):
    bee = SpellingBee(size=20, words_path=small_words)
    conversation = bee[0]
    count = conversation["messages"][1]["content"][3]["text"]
    assert bee.evaluate(conversation, f"Counting... #### {count}") == 1
    assert bee.evaluate(conversation, f"#### {count}.0") == 1
    assert bee.evaluate(conversation, [{"type": "text", "text": f"#### {count}"}]) == 1
    assert bee.evaluate(conversation, f"#### {int(count) + 1}") == 0
    assert bee.evaluate(conversation, count) == 0 and bee.extract(conversation, count) is None  # no marker
    assert bee.reward(conversation, f"#### {count}") == 1.0


def test_simple_spelling_format_and_grading(small_words):
    task = SimpleSpelling(size=50, split="test", words_path=small_words)
    for conversation in task:
        user, assistant = (m["content"] for m in conversation["messages"])
        word = user.removeprefix("Spell the word: ")
        assert assistant == f"{word}:{','.join(word)}" and " " not in assistant
        assert task.evaluate(conversation, f" {assistant}\n") == 1
        assert task.evaluate(conversation, assistant.replace(",", ", ")) == 0
    assert {task[i]["messages"][0]["content"] for i in range(50)} <= {
        f"Spell the word: {w}" for w in load_words(small_words)
    }


def test_arguments_are_checked(small_words):
    for task in TASKS:
        with pytest.raises(ValueError, match="split"):
            task(split="validation", words_path=small_words)
        with pytest.raises(ValueError, match="size"):
            task(size=-1, words_path=small_words)
        assert len(task(size=0, words_path=small_words)) == 0
        with pytest.raises(IndexError):
            task(size=3, words_path=small_words).get_example(3)
        assert task(words_path=small_words).eval_type == "generative"


# ----- the word list -----------------------------------------------------------------------
def test_nanochat_import_path_and_registry(small_words):
    from tasks.spellingbee import SimpleSpelling as NanochatSimple
    from tasks.spellingbee import SpellingBee as NanochatBee

    assert NanochatBee is SpellingBee and NanochatSimple is SimpleSpelling
    task = get_task("SpellingBee", words_path=small_words)
    assert isinstance(task, SpellingBee) and (task.size, task.split) == (256, "test")  # nanochat's chat_eval
