"""Scoring: letters, log-likelihoods (lm-eval's formats), free replies, generative grading, re-grading."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chattasks.errors import BackendError, NotSupported, TaskError
from chattasks.eval import scoring
from chattasks.eval.backends.base import GenerationConfig, LetterScores
from chattasks.registry import get_task
from chattasks.task import Task


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
def arc(hub_dir):
    return get_task("ARC-Easy", data_dir=hub_dir)


@pytest.fixture(scope="module")
def mmlu(hub_dir):
    return get_task("MMLU", data_dir=hub_dir)


@pytest.fixture(scope="module")
def gsm8k(hub_dir):
    return get_task("GSM8K", data_dir=hub_dir)


def gold(conversation) -> str:
    return conversation["messages"][-1]["content"]


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
    assert scoring.parse_letter(reply, ["A", "B", "C", "D"]) == expected


def test_parse_letter_with_numeric_labels():
    assert scoring.parse_letter("2", ["1", "2", "3", "4"]) == "2"
    assert scoring.parse_letter("Option 3.", ["1", "2", "3", "4"]) == "3"
    assert scoring.parse_letter(None, ["A"]) is None  # type: ignore[arg-type]


# ----- prompts --------------------------------------------------------------------------------------
def test_prompt_drops_the_final_assistant_message(arc):
    conversation = arc[0]
    assert scoring.prompt_of(conversation) == conversation["messages"][:-1]
    assert scoring.prompt_of(conversation)[-1]["role"] == "user"


def test_reference_is_the_extracted_answer_when_the_task_extracts(gsm8k, arc):
    assert scoring.reference_of(gsm8k, gsm8k[0]).isdigit()
    assert scoring.reference_of(arc, arc[0]) == gold(arc[0])


# ----- letter -------------------------------------------------------------------------------------
def test_letter_scores_pick_the_best_letter_and_grade_it(arc):
    items = [(i, arc[i]) for i in range(6)]
    backend = Scripted(
        letters=lambda prompt, letters: LetterScores({x: -float(i) for i, x in enumerate(letters)}, "logits")
    )
    records = scoring.score_letters(backend, arc, items)
    for (_, conversation), record in zip(items, records):
        first = conversation["letters"][0]
        assert record["response"] == record["extracted"] == first
        assert record["score"] == float(first == gold(conversation))
        assert record["method"] == "logits" and record["failure"] is None
        assert record["details"]["scores"][first] == 0.0


def test_no_letter_is_a_failure_not_a_silent_guess(arc):
    backend = Scripted(letters=lambda prompt, letters: LetterScores({}, "logprobs"))
    [record] = scoring.score_letters(backend, arc, [(0, arc[0])])
    assert (
        record["failure"] == scoring.NOT_A_LETTER and record["score"] == 0.0 and record["extracted"] is None
    )


def test_infinite_scores_are_kept_as_null(arc):
    backend = Scripted(
        letters=lambda p, letters: LetterScores({letters[0]: -0.1, letters[1]: -math.inf}, "logprobs")
    )
    [record] = scoring.score_letters(backend, arc, [(0, arc[0])])
    assert record["details"]["scores"][arc[0]["letters"][1]] is None


def test_letter_falls_back_to_generate_when_not_supported(arc):
    backend = Scripted(reply=lambda prompt, sample: f"The answer is {gold(arc[3])}")
    [record] = scoring.score_letters(backend, arc, [(3, arc[3])])
    assert backend.calls == [("letter_scores", 1), ("generate", 1)]
    assert record["method"] == "generate" and record["details"]["fallback_from"] == "letter"
    assert record["score"] == 1.0 and record["response"].startswith("The answer is")


def test_a_backend_returning_too_few_results_is_an_error(arc):
    class Short(Scripted):
        def letter_scores(self, prompts, letters):
            return []

    with pytest.raises(BackendError, match="returned 0 results for 2 prompts"):
        scoring.score_letters(Short(), arc, [(0, arc[0]), (1, arc[1])])


# ----- generate (multiple choice) ---------------------------------------------------------------------
def test_mc_generate_is_greedy_and_short(arc):
    seen: list[GenerationConfig] = []

    class Recording(Scripted):
        def generate(self, prompts, config):
            seen.append(config)
            return [["B"] for _ in prompts]

    scoring.score_mc_generate(Recording(), arc, [(0, arc[0])], seed=7)
    assert seen[0].temperature == 0 and seen[0].max_new_tokens == scoring.MC_MAX_NEW_TOKENS
    assert seen[0].num_samples == 1 and seen[0].seed == 7


# ----- loglik -------------------------------------------------------------------------------------
def with_choices(row: dict[str, Any], conversation: dict[str, Any]) -> dict[str, Any]:
    """The conversation with raw question and choice texts, whether or not the task adds them itself."""
    return {**conversation, "question": row["question"], "choices": list(row["choices"]["text"])}


def test_loglik_request_follows_lm_eval_arc(arc):
    conversation = with_choices(arc.rows[0], arc[0])
    request = scoring.loglik_request(arc, conversation)
    assert request.context == f"Question: {arc.rows[0]['question']}\nAnswer:"
    assert request.continuations == [" " + text for text in arc.rows[0]["choices"]["text"]]
    assert request.lengths == [len(text) for text in arc.rows[0]["choices"]["text"]]


def test_loglik_request_follows_lm_eval_mmlu(mmlu):
    row = mmlu.rows[0]
    conversation = {**mmlu[0], "question": row["question"], "choices": list(row["choices"])}
    request = scoring.loglik_request(mmlu, conversation)
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
        scoring.loglik_request(arc, bare)


def test_acc_and_acc_norm_can_disagree(arc):
    conversation = with_choices(arc.rows[0], arc[0])
    letters = conversation["letters"]
    lengths = [len(c) for c in conversation["choices"]]
    shortest = min(range(len(lengths)), key=lengths.__getitem__)
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    assert lengths[shortest] < lengths[longest]
    # the short choice has the best sum (-1 per character); per character the long one wins (-b, 0 < b < 1)
    b = (1 + lengths[shortest] / lengths[longest]) / 2
    sums = [-1000.0] * len(letters)
    sums[shortest], sums[longest] = -1.0 * lengths[shortest], -b * lengths[longest]
    record = scoring.grade_loglik(arc, 0, conversation, [(s, 3) for s in sums], lengths)
    assert record["response"] == letters[shortest]
    assert record["details"]["norm_choice"] == letters[longest]
    assert record["score"] == float(letters[shortest] == gold(conversation))
    assert record["score_norm"] == float(letters[longest] == gold(conversation))


def test_loglik_ties_go_to_the_first_choice(arc):
    conversation = with_choices(arc.rows[0], arc[0])
    n = len(conversation["letters"])
    record = scoring.grade_loglik(arc, 0, conversation, [(-1.0, 1)] * n, [1] * n)
    assert record["response"] == conversation["letters"][0]


def test_score_loglik_makes_one_backend_call_per_batch(arc):
    items = [(i, with_choices(arc.rows[i], arc[i])) for i in range(5)]
    backend = Scripted(loglik=lambda context, continuation: (-float(len(continuation)), 2))
    records = scoring.score_loglik(backend, arc, items)
    assert backend.calls == [("loglikelihoods", 5)]
    assert all(r["method"] == "loglik" and "score_norm" in r for r in records)


def test_loglik_not_supported_says_what_to_do(arc):
    with pytest.raises(NotSupported, match="--mc-scorer letter or generate"):
        scoring.score_loglik(Scripted(), arc, [(0, with_choices(arc.rows[0], arc[0]))])


# ----- generative ---------------------------------------------------------------------------------
def test_generative_replies_are_graded_and_failures_counted(gsm8k):
    items = [(i, gsm8k[i]) for i in range(3)]
    replies = [f"so #### {scoring.reference_of(gsm8k, gsm8k[0])}", "#### 99999999", "no idea"]
    answers = {c["messages"][0]["content"]: reply for (_, c), reply in zip(items, replies)}

    def reply(prompt, sample):
        return answers[prompt[0]["content"]]

    records = scoring.score_generative(
        Scripted(reply=reply), gsm8k, items, GenerationConfig(max_new_tokens=8)
    )
    assert [r["score"] for r in records] == [1.0, 0.0, 0.0]
    assert [r["failure"] for r in records] == [None, None, scoring.NO_ANSWER]
    assert [r["extracted"] for r in records][1] == "99999999"


def test_generative_samples_are_numbered(gsm8k):
    backend = Scripted(reply=lambda prompt, sample: f"#### {sample}")
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=3)
    records = scoring.score_generative(backend, gsm8k, [(0, gsm8k[0]), (1, gsm8k[1])], config)
    assert [r["sample"] for r in records] == [0, 1, 2, 0, 1, 2]


def test_a_backend_with_the_wrong_sample_count_is_an_error(gsm8k):
    class OneOnly(Scripted):
        def generate(self, prompts, config):
            return [["#### 1"] for _ in prompts]

    config = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=2)
    with pytest.raises(BackendError, match="expected num_samples=2"):
        scoring.score_generative(OneOnly(), gsm8k, [(0, gsm8k[0])], config)


class FakeSandboxResult:
    def __init__(self, status: str) -> None:
        self.status, self.passed, self.error = status, status == "passed", None


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


def test_sandboxed_tasks_are_graded_in_parallel_with_timeouts_apart():
    task = SandboxedTask()
    pairs = [(i, task[i], status) for i, status in enumerate(["passed", "failed", "timeout", "error"])]
    records = scoring.grade_replies(task, pairs)
    assert [r["score"] for r in records] == [1.0, 0.0, 0.0, 0.0]
    assert [r["failure"] for r in records] == [None, None, scoring.TIMEOUT, scoring.SANDBOX_ERROR]
    assert records[2]["details"]["status"] == "timeout"


# ----- re-grading ---------------------------------------------------------------------------------
def test_regrade_uses_the_current_grader_without_the_model(arc, gsm8k):
    letter = scoring.grade_letter(arc, 0, arc[0], gold(arc[0]), "logits", {gold(arc[0]): 0.0})
    free = scoring.grade_mc_reply(arc, 1, arc[1], "hmm")
    records = [{"index": 0, "sample": 0, **letter}, {"index": 1, "sample": 0, **free}]

    class Contrary(type(arc)):  # type: ignore[misc]
        def evaluate(self, conversation, assistant_response):
            return 1 - super().evaluate(conversation, assistant_response)

    contrary = Contrary.__new__(Contrary)
    contrary.__dict__.update(arc.__dict__)
    regraded = scoring.regrade_records(contrary, "categorical", [(arc[0], records[0]), (arc[1], records[1])])
    assert regraded[0]["score"] == 0.0 and regraded[0]["method"] == "logits"
    assert regraded[1]["failure"] == scoring.NOT_A_LETTER  # still no letter in "hmm"

    reply = {"index": 2, "sample": 1, "response": "#### 3", "method": "generate", "score": 1.0}
    [again] = scoring.regrade_records(gsm8k, "generative", [(gsm8k[2], reply)])
    assert again["sample"] == 1 and again["extracted"] == "3"
    assert again["score"] == float(scoring.reference_of(gsm8k, gsm8k[2]) == "3")


def test_regrade_of_loglik_recomputes_both_accuracies(arc):
    conversation = with_choices(arc.rows[0], arc[0])
    n = len(conversation["letters"])
    sums = [(-float(i + 1), 1) for i in range(n)]
    record = {"index": 0, "sample": 0, **scoring.grade_loglik(arc, 0, conversation, sums, [1] * n)}
    record["score"] = record["score_norm"] = 0.5  # stale
    [again] = scoring.regrade_records(arc, "categorical", [(conversation, record)])
    assert again["score"] == float(conversation["letters"][0] == gold(conversation))
    assert again["score_norm"] in (0.0, 1.0)


def test_finite_replaces_nan_and_infinities():
    assert scoring.finite({"a": [1.0, math.inf, (math.nan, 2)], "b": "x"}) == {
        "a": [1.0, None, [None, 2]],
        "b": "x",
    }
