"""Replies read before grading: the answer graded, never the reasoning; truncation inside it; re-grading.

Fixture replies to the in-memory GSM8K (row 0: 4 marbles + 2 bags of 3 = 10) and ARC tasks, graded by
the real scorers. Each reply that matters here is one a grader reading the raw text gets wrong:
the raw text's extraction is asserted too, so the test shows what the split changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from memory_tasks import MemoryARC, MemoryGSM8K

from chattasks.eval.backends.base import Completion, GenerationConfig
from chattasks.eval.backends.callable import CallableBackend
from chattasks.eval.record import Failure, SampleRecord
from chattasks.eval.scorers import Batch, ChoiceByGenerationScorer, GenerativeScorer, LetterScorer, Question
from chattasks.eval.scorers.reading import read_reply
from chattasks.tasks.gsm8k import extract_answer
from chattasks.tasks.multiple_choice import parse_letter

CONFIG = GenerationConfig(max_new_tokens=64)


class Replies:
    """A backend answering every prompt with one fixed reply (a string or a Completion)."""

    name = "replies"

    def __init__(self, reply: Any, template: str | None = None) -> None:
        self.reply = reply
        if template is not None:
            self.tokenizer = type("Tokenizer", (), {"chat_template": template})()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def generate(self, prompts, config):
        return [[self.reply] * config.num_samples for _ in prompts]

    def letter_scores(self, prompts, letters):
        raise NotImplementedError

    def loglikelihoods(self, contexts, continuations):
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def gsm8k():
    return MemoryGSM8K()


@pytest.fixture(scope="module")
def arc():
    return MemoryARC()


def grade(task, reply, config=CONFIG, template=None) -> SampleRecord:
    (record,) = GenerativeScorer(config).score(
        Replies(reply, template), task, Batch("t", [Question(0, task[0])])
    )
    return record


def test_the_answer_after_closed_reasoning_is_graded(gsm8k):
    record = grade(gsm8k, "<think>4 + 2*3 = 10, or is it #### 12?</think>\nSo she has #### 10")
    assert extract_answer(record.response) == "10"
    assert (record.score, record.extracted, record.failure) == (1.0, "10", None)
    assert record.reasoning == "4 + 2*3 = 10, or is it #### 12?" and record.answer == "So she has #### 10"


def test_the_only_number_inside_the_reasoning_is_not_the_answer(gsm8k):
    reply = "<think>4 + 2*3 = 10, so #### 10</think>I would rather not say."
    assert extract_answer(reply) == "10"  # what grading the raw reply would take
    record = grade(gsm8k, reply)
    assert (record.score, record.extracted, record.failure) == (0.0, None, Failure.NO_ANSWER)
    assert record.answer == "I would rather not say."


def test_nested_and_repeated_blocks(gsm8k):
    nested = grade(gsm8k, "<think>#### 3 <think>#### 4</think> #### 5</think>#### 10")
    assert nested.extracted == "10" and nested.reasoning == "#### 3 <think>#### 4</think> #### 5"
    repeated = grade(gsm8k, "<think>a</think>#### 9\n<think>no, #### 10</think>")
    assert extract_answer(repeated.response) == "10" and repeated.extracted == "9" and repeated.score == 0.0


def test_cut_off_inside_the_reasoning_at_the_token_limit(gsm8k):
    text = "<think>4 + 2*3 = 10, so #### 10 is what I will"
    record = grade(gsm8k, Completion(text, finish_reason="length", tokens=64))
    assert (record.score, record.failure, record.extracted) == (0.0, Failure.TRUNCATED_IN_REASONING, None)
    assert record.finish_reason == "length" and record.tokens == 64 and record.reasoning.endswith("I will")
    by_count = grade(gsm8k, Completion(text, tokens=64))  # no finish reason, but the limit's worth of tokens
    assert by_count.failure == Failure.TRUNCATED_IN_REASONING


def test_an_unclosed_block_without_the_limit_known_is_no_answer(gsm8k):
    text = "<think>4 + 2*3 = 10, so #### 10"
    # a stop token as the 64th token: the finish reason says the limit did not cut the reply
    for reply in (
        text,
        Completion(text, finish_reason="stop", tokens=20),
        Completion(text, finish_reason="stop", tokens=64),
    ):
        record = grade(gsm8k, reply)
        assert record.failure == Failure.NO_ANSWER and record.reasoning == text.removeprefix("<think>")


def test_a_servers_separate_reasoning_is_folded_into_the_response(gsm8k):
    record = grade(gsm8k, Completion("#### 10", reasoning="4 + 2*3 = #### 12? no: 10", reasoning_tokens=9))
    assert record.response == "<think>4 + 2*3 = #### 12? no: 10</think>#### 10"
    assert record.extracted == "10" and record.reasoning_tokens == 9 and record.score == 1.0
    cut = grade(gsm8k, Completion("", reasoning="4 + 2*3 =", finish_reason="length"))
    assert cut.response == "<think>4 + 2*3 =" and cut.failure == Failure.TRUNCATED_IN_REASONING


def test_pairs_named_by_the_template_are_split_and_kept_for_regrading(gsm8k):
    reply = "[THINK]#### 12[/THINK]#### 10"
    assert grade(gsm8k, reply).extracted == "12"  # no template: [THINK] is just text
    record = grade(gsm8k, reply, template="{{ '[THINK]' }}{{ thinking }}{{ '[/THINK]' }}")
    assert record.extracted == "10" and record.details["reasoning_tags"] == [
        ["<think>", "</think>"],
        ["[THINK]", "[/THINK]"],
    ]
    again = GenerativeScorer(CONFIG).regrade(gsm8k, [(Question(0, gsm8k[0]), record)])[0]
    assert again.extracted == "10" and again.reasoning == "#### 12"


def test_multiple_choice_never_reads_the_letter_inside_the_reasoning(arc):
    gold = arc[0]["messages"][-1]["content"]
    wrong = next(letter for letter in arc[0]["letters"] if letter != gold)
    only_inside = f"<think>It must be {gold}.</think>"
    assert parse_letter(only_inside, arc[0]["letters"]) == gold
    scorer = ChoiceByGenerationScorer()
    (record,) = scorer.score(Replies(only_inside), arc, Batch("t", [Question(0, arc[0])]))
    assert (record.extracted, record.failure, record.score) == (None, Failure.NOT_A_LETTER, 0.0)
    (record,) = scorer.score(
        Replies(f"<think>{gold} looks right</think> {wrong}"), arc, Batch("t", [Question(0, arc[0])])
    )
    assert record.extracted == wrong and record.score == 0.0


def test_letter_scores_of_the_callable_backend_skip_the_reasoning(arc):
    gold = arc[0]["messages"][-1]["content"]
    backend = CallableBackend(lambda messages: f"<think>Not {gold}... or is it?</think>{gold}")
    (record,) = LetterScorer().score(backend, arc, Batch("t", [Question(0, arc[0])]))
    assert record.extracted == gold and record.score == 1.0
    backend = CallableBackend(lambda messages: f"<think>{gold}</think>")
    assert backend.letter_scores([arc[0]["messages"][:-1]], [arc[0]["letters"]])[0].best() is None


def test_regrade_splits_the_reasoning_of_a_run_made_before(gsm8k):
    line = {  # a chattasks 0.1.0 journal line: no schema, no reasoning fields
        "task": "t", "index": 0, "sample": 0, "prompt": [], "response": "<think>#### 10</think>unsure",
        "extracted": "10", "reference": "10", "score": 1.0, "failure": None, "method": "generate",
    }  # fmt: skip
    old = SampleRecord.from_json(line)
    (again,) = GenerativeScorer(CONFIG).regrade(gsm8k, [(Question(0, gsm8k[0]), old)])
    assert (again.score, again.failure, again.reasoning, again.answer) == (
        0.0,
        Failure.NO_ANSWER,
        "#### 10",
        "unsure",
    )
    cut = old.replace(response="<think>#### 10", finish_reason="length")
    (again,) = GenerativeScorer(CONFIG).regrade(gsm8k, [(Question(0, gsm8k[0]), cut)])
    assert again.failure == Failure.TRUNCATED_IN_REASONING


def test_records_keep_the_new_fields_only_when_set(gsm8k):
    plain = grade(gsm8k, "#### 10").to_json()
    assert not {"answer", "reasoning", "reasoning_tokens", "finish_reason", "tokens", "tool_calls"} & set(
        plain
    )
    thought = grade(gsm8k, Completion("<think>x</think>#### 10", finish_reason="stop", tokens=8))
    assert SampleRecord.from_json(thought.to_json()) == thought
    assert read_reply("<think>x</think>y", (), None).answer == "<think>x</think>y"  # no pairs: nothing split
