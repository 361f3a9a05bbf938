"""Scorers: letters, log-likelihoods (lm-eval's formats), free replies, generative grading, re-grading.

In-memory ARC, MMLU and GSM8K tasks (the real classes and graders over rows made in memory)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from memory_tasks import MemoryARC, MemoryGSM8K, MemoryMMLU

from chattasks.errors import BackendError, NotSupported, TaskError, TaskNotSupported
from chattasks.eval.backends.base import GenerationConfig, LetterScores
from chattasks.eval.record import Failure, SampleRecord, finite
from chattasks.eval.scorers import (
    Batch,
    ChoiceByGenerationScorer,
    GenerativeScorer,
    LetterScorer,
    LoglikScorer,
    Question,
    SandboxScorer,
    scorer_for,
)
from chattasks.eval.scorers.base import prompt_of, reference_of
from chattasks.eval.scorers.choice import MC_MAX_NEW_TOKENS
from chattasks.task import Task
from chattasks.tasks.multiple_choice import parse_letter


class Scripted:
    """A backend whose answers are given by plain functions (None: that kind is not supported)."""

    name = "scripted"

    def __init__(self, letters=None, loglik=None, reply=None):
        self._letters, self._loglik, self._reply = letters, loglik, reply
        self.calls: list[tuple[str, int]] = []

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "scripted"}

    def letter_scores(self, prompts, letters):
        self.calls.append(("letter_scores", len(prompts)))
        if self._letters is None:
            raise NotSupported("no letter scores here")
        return [self._letters(p, ls) for p, ls in zip(prompts, letters)]

    def loglikelihoods(self, contexts, continuations):
        self.calls.append(("loglikelihoods", len(contexts)))
        if self._loglik is None:
            raise NotSupported("no log-probabilities here")
        return [[self._loglik(c, x) for x in conts] for c, conts in zip(contexts, continuations)]

    def generate(self, prompts, config):
        self.calls.append(("generate", len(prompts)))
        return [[self._reply(p, s) for s in range(config.num_samples)] for p in prompts]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def arc():
    return MemoryARC()


@pytest.fixture(scope="module")
def mmlu():
    return MemoryMMLU()


@pytest.fixture(scope="module")
def gsm8k():
    return MemoryGSM8K()


def gold(conversation) -> str:
    return conversation["messages"][-1]["content"]


def batch(task, indices, name="t") -> Batch:
    return Batch(name, [Question(i, task[i]) for i in indices])


def regrade_one(scorer, task, record):
    [again] = scorer.regrade(task, [(Question(record.index, task[record.index]), record)])
    return again


# ----- parse_letter -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("B", "B"),
        ("  B\n", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("**B**", "B"),
        ("The answer is B", "B"),
        ("Answer: C) because", "C"),
        ("b", None),  # case-sensitive
        ("Bees buzz", None),  # a letter must be a whole word
        ("", None),
        ("I think it is D", "D"),  # "I" is not a candidate letter
    ],
)
def test_parse_letter_rule(reply, expected):
    assert parse_letter(reply, ["A", "B", "C", "D"]) == expected


def test_parse_letter_with_numeric_labels():
    assert parse_letter("2", ["1", "2", "3", "4"]) == "2"
    assert parse_letter("Option 3.", ["1", "2", "3", "4"]) == "3"
    assert parse_letter(None, ["A"]) is None  # type: ignore[arg-type]


# ----- prompts --------------------------------------------------------------------------------------
def test_prompt_drops_the_final_assistant_message(arc):
    conversation = arc[0]
    assert prompt_of(conversation) == conversation["messages"][:-1]
    assert prompt_of(conversation)[-1]["role"] == "user"


def test_reference_is_the_extracted_answer_when_the_task_extracts(gsm8k, arc):
    assert reference_of(gsm8k, gsm8k[0]).isdigit()
    assert reference_of(arc, arc[0]) == gold(arc[0])


# ----- letter -------------------------------------------------------------------------------------
def test_letter_scores_pick_the_best_letter_and_grade_it(arc):
    backend = Scripted(
        letters=lambda prompt, letters: LetterScores({x: -float(i) for i, x in enumerate(letters)}, "logits")
    )
    records = LetterScorer().score(backend, arc, batch(arc, range(6)))
    for conversation, record in zip(arc[:6], records):
        first = conversation["letters"][0]
        assert record.response == record.extracted == first
        assert record.score == float(first == gold(conversation))
        assert record.method == "logits" and record.failure is None
        assert record.details["scores"][first] == 0.0


def test_no_letter_is_a_failure_not_a_silent_guess(arc):
    backend = Scripted(letters=lambda prompt, letters: LetterScores({}, "logprobs"))
    [record] = LetterScorer().score(backend, arc, batch(arc, [0]))
    assert record.failure == Failure.NOT_A_LETTER and record.score == 0.0 and record.extracted is None


def test_infinite_scores_are_kept_as_null(arc):
    backend = Scripted(
        letters=lambda p, letters: LetterScores({letters[0]: -0.1, letters[1]: -math.inf}, "logprobs")
    )
    [record] = LetterScorer().score(backend, arc, batch(arc, [0]))
    assert record.details["scores"][arc[0]["letters"][1]] is None


def test_letter_falls_back_to_generate_when_not_supported(arc):
    backend = Scripted(reply=lambda prompt, sample: f"The answer is {gold(arc[3])}")
    [record] = LetterScorer().score(backend, arc, batch(arc, [3]))
    assert backend.calls == [("letter_scores", 1), ("generate", 1)]
    assert record.method == "generate" and record.details["fallback_from"] == "letter"
    assert record.score == 1.0 and record.response.startswith("The answer is")


def test_a_backend_returning_too_few_results_is_an_error(arc):
    class Short(Scripted):
        def letter_scores(self, prompts, letters):
            return []

    with pytest.raises(BackendError, match="returned 0 results for 2 prompts"):
        LetterScorer().score(Short(), arc, batch(arc, [0, 1]))


# ----- generate (multiple choice) ---------------------------------------------------------------------
def test_mc_generate_is_greedy_and_short(arc):
    seen: list[GenerationConfig] = []

    class Recording(Scripted):
        def generate(self, prompts, config):
            seen.append(config)
            return [["B"] for _ in prompts]

    ChoiceByGenerationScorer(seed=7).score(Recording(), arc, batch(arc, [0]))
    assert seen[0].temperature == 0 and seen[0].max_new_tokens == MC_MAX_NEW_TOKENS
    assert seen[0].num_samples == 1 and seen[0].seed == 7


# ----- loglik -------------------------------------------------------------------------------------
def test_loglik_request_follows_lm_eval_arc(arc):
    row = arc.rows[0]
    request = arc.loglik_request(arc[0])
    assert request.context == f"Question: {row['question']}\nAnswer:"
    assert request.continuations == [" " + text for text in row["choices"]["text"]]
    assert request.lengths == [len(text) for text in row["choices"]["text"]]


def test_loglik_request_follows_lm_eval_mmlu(mmlu):
    row = mmlu.rows[0]
    request = mmlu.loglik_request(mmlu[0])
    subject = row["subject"].replace("_", " ")
    assert request.context == (
        f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        f"{row['question'].strip()}\nA. {row['choices'][0]}\nB. {row['choices'][1]}\n"
        f"C. {row['choices'][2]}\nD. {row['choices'][3]}\nAnswer:"
    )
    assert request.continuations == [" A", " B", " C", " D"] and request.lengths == [1, 1, 1, 1]


def test_loglik_needs_question_and_choices(arc):
    bare = {key: arc[0][key] for key in ("messages", "letters")}
    with pytest.raises(TaskError, match="'question' and 'choices'"):
        arc.loglik_request(bare)


def test_tasks_without_a_loglik_request_cannot_be_scored_that_way(gsm8k):
    with pytest.raises(TaskNotSupported, match="cannot be scored by log-likelihood"):
        LoglikScorer().check(gsm8k, Question(0, gsm8k[0]))


class Sums(Scripted):
    """A backend answering the log-likelihoods it is given, per continuation text."""

    def __init__(self, sums):
        super().__init__(loglik=lambda context, continuation: sums[continuation])


def test_acc_and_acc_norm_can_disagree(arc):
    conversation = arc[0]
    letters = conversation["letters"]
    lengths = [len(c) for c in conversation["choices"]]
    shortest = min(range(len(lengths)), key=lengths.__getitem__)
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    assert lengths[shortest] < lengths[longest]
    # the short choice has the best sum (-1 per character); per character the long one wins (-b, 0 < b < 1)
    b = (1 + lengths[shortest] / lengths[longest]) / 2
    sums = {f" {c}": (-1000.0, 3) for c in conversation["choices"]}
    sums[f" {conversation['choices'][shortest]}"] = (-1.0 * lengths[shortest], 3)
    sums[f" {conversation['choices'][longest]}"] = (-b * lengths[longest], 3)
    [record] = LoglikScorer().score(Sums(sums), arc, batch(arc, [0]))
    assert record.response == letters[shortest]
    assert record.details["norm_choice"] == letters[longest]
    assert record.score == float(letters[shortest] == gold(conversation))
    assert record.score_norm == float(letters[longest] == gold(conversation))


def test_loglik_ties_go_to_the_first_choice(arc):
    backend = Scripted(loglik=lambda context, continuation: (-1.0, 1))
    [record] = LoglikScorer().score(backend, arc, batch(arc, [0]))
    assert record.response == arc[0]["letters"][0]


def test_score_loglik_makes_one_backend_call_per_batch(arc):
    backend = Scripted(loglik=lambda context, continuation: (-float(len(continuation)), 2))
    records = LoglikScorer().score(backend, arc, batch(arc, range(5)))
    assert backend.calls == [("loglikelihoods", 5)]
    assert all(r.method == "loglik" and r.score_norm is not None for r in records)


def test_loglik_not_supported_says_what_to_do(arc):
    with pytest.raises(NotSupported, match="--mc-scorer letter or generate"):
        LoglikScorer().score(Scripted(), arc, batch(arc, [0]))


# ----- generative ---------------------------------------------------------------------------------
def test_generative_replies_are_graded_and_failures_counted(gsm8k):
    replies = [f"so #### {reference_of(gsm8k, gsm8k[0])}", "#### 99999999", "no idea"]
    answers = {gsm8k[i]["messages"][0]["content"]: reply for i, reply in enumerate(replies)}

    def reply(prompt, sample):
        return answers[prompt[0]["content"]]

    records = GenerativeScorer(GenerationConfig(max_new_tokens=8)).score(
        Scripted(reply=reply), gsm8k, batch(gsm8k, range(3))
    )
    assert [r.score for r in records] == [1.0, 0.0, 0.0]
    assert [r.failure for r in records] == [None, None, Failure.NO_ANSWER]
    assert [r.extracted for r in records][1] == "99999999"


def test_generative_samples_are_numbered(gsm8k):
    backend = Scripted(reply=lambda prompt, sample: f"#### {sample}")
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=3)
    records = GenerativeScorer(config).score(backend, gsm8k, batch(gsm8k, [0, 1]))
    assert [r.sample for r in records] == [0, 1, 2, 0, 1, 2]
    assert [r.index for r in records] == [0, 0, 0, 1, 1, 1]


def test_a_backend_with_the_wrong_sample_count_is_an_error(gsm8k):
    class OneOnly(Scripted):
        def generate(self, prompts, config):
            return [["#### 1"] for _ in prompts]

    config = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=2)
    with pytest.raises(BackendError, match="expected num_samples=2"):
        GenerativeScorer(config).score(OneOnly(), gsm8k, batch(gsm8k, [0]))


class FakeSandboxResult:
    def __init__(self, status: str) -> None:
        self.status, self.passed, self.error = status, status == "passed", None
        self.stdout, self.stderr = f"out {status}", ""


class SandboxedTask(Task):
    """A generative task graded through run_many, the way HumanEval is."""

    eval_type = "generative"  # type: ignore[assignment]

    def num_examples(self) -> int:
        return 4

    def get_example(self, index: int):
        return {"messages": [{"role": "user", "content": f"q{index}"}, {"role": "assistant", "content": "x"}]}

    def evaluate(self, conversation, assistant_response):
        raise AssertionError("graded one by one instead of in parallel")

    def run_many(self, conversations, responses):
        return [FakeSandboxResult(response) for response in responses]


def test_the_scorer_is_chosen_by_what_the_task_declares(arc, gsm8k):
    greedy = GenerationConfig()
    assert isinstance(scorer_for(SandboxedTask(), "generative", "letter", greedy), SandboxScorer)
    assert isinstance(scorer_for(gsm8k, "generative", "loglik", greedy), GenerativeScorer)
    assert isinstance(scorer_for(arc, "categorical", "letter", greedy), LetterScorer)
    assert isinstance(scorer_for(arc, "categorical", "loglik", greedy), LoglikScorer)
    assert isinstance(scorer_for(arc, "categorical", "generate", greedy), ChoiceByGenerationScorer)
    assert SandboxedTask().runs_code and not gsm8k.runs_code


def test_sandboxed_tasks_are_graded_in_parallel_with_timeouts_apart():
    task = SandboxedTask()
    statuses = ["passed", "failed", "timeout", "error"]
    backend = Scripted(reply=lambda prompt, sample: statuses[int(prompt[0]["content"][1:])])
    records = SandboxScorer(GenerationConfig()).score(backend, task, batch(task, range(4)))
    assert [r.score for r in records] == [1.0, 0.0, 0.0, 0.0]
    assert [r.failure for r in records] == [None, None, Failure.TIMEOUT, Failure.SANDBOX_ERROR]
    assert records[2].details["status"] == "timeout" and records[2].details["stdout"] == "out timeout"


# ----- re-grading ---------------------------------------------------------------------------------
class Contrary(MemoryARC):
    """ARC with its grader inverted (a grader bug fixed, say)."""

    def evaluate(self, conversation, assistant_response):
        return 1 - super().evaluate(conversation, assistant_response)


def test_regrade_uses_the_current_grader_without_the_model(arc, gsm8k):
    letter = (
        LetterScorer()
        .score(
            Scripted(letters=lambda p, ls: LetterScores({gold(arc[0]): 0.0}, "logits")), arc, batch(arc, [0])
        )[0]
        .replace(time=1.5, rank=3)
    )
    free = ChoiceByGenerationScorer().score(Scripted(reply=lambda p, s: "hmm"), arc, batch(arc, [1]))[0]
    contrary = Contrary()
    again = LetterScorer().regrade(contrary, [(Question(0, arc[0]), letter), (Question(1, arc[1]), free)])
    assert again[0].score == 0.0 and again[0].method == "logits" and letter.score == 1.0
    assert again[0].time == 1.5 and again[0].rank == 3  # what grading does not decide is kept
    assert again[1].failure == Failure.NOT_A_LETTER  # still no letter in "hmm"

    reply = GenerativeScorer(GenerationConfig()).score(
        Scripted(reply=lambda p, s: "#### 3"), gsm8k, Batch("t", [Question(2, gsm8k[2])])
    )[0]
    again_reply = regrade_one(GenerativeScorer(GenerationConfig()), gsm8k, reply.replace(sample=1, score=0.5))
    assert again_reply.sample == 1 and again_reply.extracted == "3"
    assert again_reply.score == float(reference_of(gsm8k, gsm8k[2]) == "3")


def test_regrade_of_loglik_recomputes_both_accuracies(arc):
    backend = Scripted(loglik=lambda context, continuation: (-float(len(continuation)), 1))
    [record] = LoglikScorer().score(backend, arc, batch(arc, [0]))
    stale = record.replace(score=0.5, score_norm=0.5)
    again = regrade_one(LoglikScorer(), arc, stale)
    assert again.score == record.score and again.score_norm == record.score_norm


def test_finite_replaces_nan_and_infinities():
    assert finite({"a": [1.0, math.inf, (math.nan, 2)], "b": "x"}) == {
        "a": [1.0, None, [None, 2]],
        "b": "x",
    }


def test_records_are_typed(arc):
    [record] = LetterScorer().score(
        Scripted(letters=lambda p, ls: LetterScores({ls[0]: 0.0}, "logits")), arc, batch(arc, [0], "mem")
    )
    assert isinstance(record, SampleRecord) and record.task == "mem" and record.letters == arc[0]["letters"]
    assert record.prompt == arc[0]["messages"][:-1] and record.reference == gold(arc[0])


def test_backends_may_answer_with_completions(gsm8k):
    from chattasks.eval.backends.base import Completion

    backend = Scripted(reply=lambda prompt, sample: Completion("#### 7", finish_reason="stop", tokens=3))
    [record] = GenerativeScorer(GenerationConfig()).score(backend, gsm8k, batch(gsm8k, [0]))
    assert record.response == "#### 7" and record.extracted == "7"
