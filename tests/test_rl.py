"""RL: rewards equal the graders' verdicts, TRL's reward-function form, rollouts with advantages and pass@k."""

from __future__ import annotations

import json
import random

import pytest
from memory_tasks import MemoryARC, MemoryGSM8K
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.errors import TaskError
from chattasks.eval.runner import evaluate_model
from chattasks.eval.scorers.base import reference_of
from chattasks.passk import pass_at_k
from chattasks.rl import (
    RewardShaping,
    advantages_of,
    completion_text,
    prompt_rows,
    reward_function,
    reward_of,
    rollouts,
)


@pytest.fixture(scope="module")
def gsm8k():
    return MemoryGSM8K()


REPLIES = ["so #### {answer}", "#### {wrong}", "I do not know", "The answer is {answer}"]


def reply_for(kind: int, conversation, task) -> str:
    answer = reference_of(task, conversation)
    return REPLIES[kind].format(answer=answer, wrong=int(answer) + 1)


def test_the_correctness_reward_is_the_grade(gsm8k):
    for index in range(12):
        conversation = gsm8k[index]
        for kind in range(len(REPLIES)):
            reply = reply_for(kind, conversation, gsm8k)
            reward = reward_of(gsm8k, conversation, reply)
            assert reward.correct == gsm8k.evaluate(conversation, reply)
            assert reward.total == reward.correct  # no shaping unless asked for


def test_shaping_is_opt_in_and_reported_apart(gsm8k):
    conversation = gsm8k[0]
    shaping = RewardShaping(answer_format=0.1)
    right, wrong, nothing = (reply_for(k, conversation, gsm8k) for k in range(3))
    assert reward_of(gsm8k, conversation, right, shaping).total == pytest.approx(1.1)
    wrong_reward = reward_of(gsm8k, conversation, wrong, shaping)
    assert wrong_reward.correct == 0.0 and wrong_reward.components == {
        "answer_format": 1.0,
        "reasoning_closed": 1.0,
    }
    assert wrong_reward.total == pytest.approx(0.1)
    assert reward_of(gsm8k, conversation, nothing, shaping).components["answer_format"] == 0.0
    with pytest.raises(TypeError, match="answer_format must be a number"):
        RewardShaping(answer_format="big")  # type: ignore[arg-type]


def test_prompt_rows_carry_the_index_and_reference(gsm8k, memory_tasks):
    rows = prompt_rows("mem-GSM8K", indices=[3, 1])
    assert [row["chattasks_index"] for row in rows] == [3, 1]
    assert rows[0]["prompt"] == gsm8k[3]["messages"][:-1]
    assert rows[0]["reference"] == reference_of(gsm8k, gsm8k[3]) and rows[0]["chattasks_task"] == "mem-GSM8K"
    text_rows = prompt_rows("mem-GSM8K", indices=[3], conversational=False)
    assert text_rows[0]["prompt"] == gsm8k[3]["messages"][0]["content"]


def test_the_trl_reward_function_grades_text_and_conversational_completions(gsm8k, memory_tasks):
    reward = reward_function("mem-GSM8K")
    indices = [0, 1, 2, 3]
    texts = [reply_for(k, gsm8k[i], gsm8k) for k, i in zip(range(4), indices)]
    expected = [float(gsm8k.evaluate(gsm8k[i], t)) for i, t in zip(indices, texts)]
    prompts = [row["prompt"] for row in prompt_rows("mem-GSM8K", indices=indices)]
    assert reward(prompts, texts, chattasks_index=indices) == expected
    conversational = [[{"role": "assistant", "content": t}] for t in texts]
    logged: dict[str, float] = {}
    values = reward(
        prompts, conversational, chattasks_index=indices, log_metric=lambda k, v: logged.__setitem__(k, v)
    )
    assert values == expected
    assert logged["chattasks/mem-GSM8K/correct"] == sum(expected) / 4
    assert logged["chattasks/mem-GSM8K/answer_format"] == 0.5  # the last two replies give no #### number
    with pytest.raises(TaskError, match="chattasks_index"):
        reward(prompts, texts)


def test_completion_text_reads_both_forms():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "y"}]) == "y"
    with pytest.raises(TypeError):
        completion_text(3)


def test_advantages_are_reward_minus_the_group_mean():
    assert advantages_of([1.0, 0.0, 0.0, 1.0]) == [0.5, -0.5, -0.5, 0.5]
    assert advantages_of([1.0, 0.0, 0.0, 1.0], normalize=True) == [1.0, -1.0, -1.0, 1.0]
    assert advantages_of([1.0, 1.0], normalize=True) == [0.0, 0.0]


class Sampler:
    """A function model whose replies depend only on the prompt and how often it was asked (seeded)."""

    def __init__(self, task, seed: int) -> None:
        self.task, self.seed, self.asked = task, seed, {}
        self.answers = {c["messages"][0]["content"]: reference_of(task, c) for c in task}

    def __call__(self, messages):
        prompt = messages[-1]["content"]
        if prompt not in self.answers:  # a multiple-choice question: a letter or not
            return random.Random(f"{self.seed}:{prompt}").choice(["A", "B", "C", "no"])
        count = self.asked[prompt] = self.asked.get(prompt, -1) + 1
        rng = random.Random(f"{self.seed}:{prompt}:{count}")
        answer = self.answers[prompt]
        return rng.choice([f"#### {answer}", f"#### {int(answer) + 3}", "no idea"])


def test_rollouts_group_replies_with_rewards_advantages_and_pass_at_k(gsm8k, memory_tasks, tmp_path):
    groups = rollouts(
        Sampler(gsm8k, 7), "mem-GSM8K", [5, 2, 9], num_samples=6, ks=(1, 4), output=tmp_path / "rl"
    )
    assert [g.index for g in groups] == [5, 2, 9]  # the rows asked for, in the subset's order
    for group in groups:
        conversation = gsm8k[group.index]
        assert group.prompt == conversation["messages"][:-1] and len(group.replies) == 6
        assert group.tool_calls == [[] for _ in range(6)]  # a function without tools calls none
        grades = [gsm8k.evaluate(conversation, reply) for reply in group.replies]
        assert [r.correct for r in group.rewards] == grades
        mean = sum(grades) / 6
        assert group.advantages == pytest.approx([g - mean for g in grades])
        assert group.pass_at_k == {
            "pass@1": pytest.approx(pass_at_k(6, sum(grades), 1)),
            "pass@4": pytest.approx(pass_at_k(6, sum(grades), 4)),
        }
    lines = sum(1 for _ in open(tmp_path / "rl" / "samples" / "mem-GSM8K.jsonl"))
    assert lines == 18


def test_a_rollout_job_resumes_without_sampling_again(gsm8k, memory_tasks, tmp_path):
    first = rollouts(Sampler(gsm8k, 3), "mem-GSM8K", [0, 1], num_samples=4, output=tmp_path / "rl")
    untouched = Sampler(gsm8k, 99)
    again = rollouts(untouched, "mem-GSM8K", [0, 1], num_samples=4, output=tmp_path / "rl", resume=True)
    assert untouched.asked == {} and [g.replies for g in again] == [g.replies for g in first]


def test_reward_command_shows_reward_beside_accuracy(gsm8k, memory_tasks, tmp_path):
    out = tmp_path / "run"
    evaluate_model(Sampler(gsm8k, 1), ["mem-GSM8K", "mem-ARC"], limit=10, output=out, progress=False)
    result = CliRunner().invoke(app, ["reward", str(out), "--json", "--format-weight", "0.5"])
    assert result.exit_code == 0, result.output
    rows = {row["task"]: row for row in json.loads(result.output)}
    results = json.loads((out / "results.json").read_text())
    for task in ("mem-GSM8K", "mem-ARC"):
        assert rows[task]["mean_score"] == pytest.approx(results["tasks"][task]["accuracy"])
        assert rows[task]["mean_correct"] == pytest.approx(results["tasks"][task]["accuracy"])
        assert rows[task]["mean_total"] == pytest.approx(
            rows[task]["mean_correct"] + 0.5 * rows[task]["components"]["answer_format"]
        )
    table = CliRunner().invoke(app, ["reward", str(out)], terminal_width=160)
    assert table.exit_code == 0 and "mem-GSM8K" in table.output and "total" in table.output


def test_multiple_choice_rewards_use_the_letter(memory_tasks):
    arc = MemoryARC()
    conversation = arc[0]
    gold = conversation["messages"][-1]["content"]
    assert reward_of(arc, conversation, gold).correct == 1.0
    assert reward_of(arc, conversation, "maybe").components["answer_format"] == 0.0


def test_reasoning_is_split_off_before_the_reward(gsm8k):
    conversation = gsm8k[0]
    answer = reference_of(gsm8k, conversation)
    thought_only = f"<think>so #### {answer}</think> I am not sure"
    assert reward_of(gsm8k, conversation, thought_only).correct == 0.0  # the number is only in the reasoning
    assert reward_of(gsm8k, conversation, f"<think>hmm</think>#### {answer}").correct == 1.0
    unclosed = reward_of(gsm8k, conversation, f"<think>#### {answer}", RewardShaping(reasoning_closed=0.2))
    assert (
        unclosed.correct == 0.0 and unclosed.components["reasoning_closed"] == 0.0 and unclosed.total == 0.0
    )
    closed = reward_of(
        gsm8k, conversation, f"<think>x</think>#### {answer}", RewardShaping(reasoning_closed=0.2)
    )
    assert closed.total == pytest.approx(1.2)
    assert reward_of(gsm8k, conversation, f"<think>x</think>#### {answer}").correct == gsm8k.evaluate(
        conversation, f"#### {answer}"
    )
