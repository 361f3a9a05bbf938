"""The openai backend's tool calls (``tools``/``tool_calls``) and a server's separate reasoning.

Real HTTP to the loopback ``tests/openai_server.py``: with ``tools=True`` its fake model calls
the calculator on the ``calc: EXPR`` of a prompt and then answers with the tool's result; with
``reasoning=True`` it sends its thought in ``reasoning_content``. Expected values are recomputed
from the fake model's rules (``tool_turn``, ``reasoning_reply``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai_server import FakeOpenAIServer, asked, reasoning_reply

from chattasks.errors import BackendError
from chattasks.eval.backends.base import Completion, GenerationConfig
from chattasks.eval.backends.openai import OpenAIBackend
from chattasks.eval.runner import evaluate_model
from chattasks.task import Task
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tools.calls import CALCULATOR_SCHEMA, ToolCall

CHAT = "/v1/chat/completions"
CALCULATOR = GenerationConfig(max_new_tokens=64, tools="calculator")


class CalcGSM8K(GSM8K):
    """GSM8K over rows whose questions ask the fake model to calculate."""

    def __init__(self, **kwargs: Any) -> None:
        Task.__init__(self, **kwargs)
        self.subset, self.split = "memory", "test"
        self.rows = [
            {"question": "calc: 12*3", "answer": "<<12*3=36>>36\n#### 36"},
            {"question": "calc: 1,000/8", "answer": "<<1000/8=125>>125\n#### 125"},
            {"question": "calc: 7*6", "answer": "<<7*6=42>>42\n#### 41"},  # the reference disagrees
        ]


def backend(server: FakeOpenAIServer) -> OpenAIBackend:
    return OpenAIBackend("fake-model", base_urls=[server.url], timeout=5.0, backoff=0.001)


def test_tool_calls_are_run_and_answered_with_tool_messages():
    with FakeOpenAIServer(tools=True) as fake, backend(fake) as b:
        (reply,) = b.generate([[{"role": "user", "content": "calc: 12*3"}]], CALCULATOR)[0]
        first, second = asked(fake, CHAT)
    assert isinstance(reply, Completion)
    assert reply.text == "The result is #### 36" and reply.finish_reason == "stop"
    assert reply.tool_calls == (ToolCall("12*3", "36", None, position=0),) and reply.tools == "calculator"
    assert first["tools"] == [CALCULATOR_SCHEMA] and first["messages"] == [
        {"role": "user", "content": "calc: 12*3"}
    ]
    call, answer = second["messages"][1:]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == "calculator"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"expression": "12*3"}
    assert answer == {
        "role": "tool",
        "tool_call_id": call["tool_calls"][0]["id"],
        "name": "calculator",
        "content": "36",
    }
    assert b.describe()["tools_supported"] is True


def test_a_refused_expression_is_answered_with_the_error_and_nothing_runs(tmp_path):
    canary = tmp_path / "canary"
    prompt = f"calc: __import__('os').system('touch {canary}')"
    with FakeOpenAIServer(tools=True) as fake, backend(fake) as b:
        (reply,) = b.generate([[{"role": "user", "content": prompt}]], CALCULATOR)[0]
        tool_message = asked(fake, CHAT)[-1]["messages"][-1]
    (call,) = reply.tool_calls
    assert call.result is None and call.error.startswith("calculator:")
    assert tool_message["content"] == f"error: {call.error}"
    assert not canary.exists()


def test_auto_offers_no_tools_to_a_server():
    with FakeOpenAIServer(tools=True) as fake, backend(fake) as b:
        (reply,) = b.generate(
            [[{"role": "user", "content": "calc: 12*3"}]], GenerationConfig(max_new_tokens=8)
        )[0]
        assert "tools" not in asked(fake, CHAT)[0]
    assert reply.tool_calls == () and reply.tools is None


def test_a_server_refusing_tools_says_how_to_go_on():
    with FakeOpenAIServer(reject_tools=True) as fake, backend(fake) as b:
        with pytest.raises(BackendError, match="refuses tools.*--tools none"):
            b.generate([[{"role": "user", "content": "calc: 1+1"}]], CALCULATOR)
    assert b.tools_supported is False


def test_the_token_budget_covers_every_turn():
    with FakeOpenAIServer(tools=True) as fake, backend(fake) as b:
        b.generate(
            [[{"role": "user", "content": "calc: 2+2"}]],
            GenerationConfig(max_new_tokens=50, tools="calculator"),
        )
        budgets = [body["max_tokens"] for body in asked(fake, CHAT)]
    assert budgets == [50, 50]  # the fake server reports no usage: the whole budget each turn


def test_gsm8k_with_the_calculator_through_the_runner(tmp_path):
    with FakeOpenAIServer(tools=True) as fake:
        results = evaluate_model(
            "fake-model",
            [CalcGSM8K()],
            backend="openai",
            base_urls=[fake.url],
            generation=CALCULATOR,
            output=tmp_path / "run",
        )
    records = results.samples["CalcGSM8K"]
    assert [r.score for r in records] == [1.0, 1.0, 0.0]
    assert [r.tool_calls[0]["result"] for r in records] == ["36", "125.0", "42"]
    assert all(r.details["tools"] == "calculator" for r in records)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (
        saved["tasks"]["CalcGSM8K"]["tools"] == "calculator" and saved["generation"]["tools"] == "calculator"
    )
    journal = [
        json.loads(line)
        for line in (tmp_path / "run" / "samples" / "CalcGSM8K.jsonl").read_text().splitlines()
    ]
    assert journal[0]["tool_calls"] == [
        {"expression": "12*3", "result": "36", "error": None, "position": 0, "tool": "calculator"}
    ]


# ---- reasoning_content --------------------------------------------------------------------------


def test_reasoning_content_comes_back_apart_with_its_token_count():
    prompt = "What is the answer?"
    with FakeOpenAIServer(reasoning=True) as fake, backend(fake) as b:
        (reply,) = b.generate([[{"role": "user", "content": prompt}]], GenerationConfig(max_new_tokens=100))[
            0
        ]
    thought, answer, finish = reasoning_reply(prompt, 100)
    assert (reply.text, reply.reasoning, reply.finish_reason) == (answer, thought, finish)
    assert reply.reasoning_tokens == len(thought.split(" ")) and reply.tokens == len(
        thought.split(" ")
    ) + len(answer.split(" "))


def test_reasoning_is_journaled_apart_and_never_graded(memory_tasks):
    with FakeOpenAIServer(reasoning=True) as fake:
        results = evaluate_model(
            "fake-model", ["mem-GSM8K"], backend="openai", base_urls=[fake.url], limit=4,
            generation=GenerationConfig(max_new_tokens=100),
        )  # fmt: skip
    for record in results.samples["mem-GSM8K"]:
        question = record.prompt[-1]["content"]
        thought, answer, _ = reasoning_reply(question, 100)
        assert record.reasoning == thought and record.answer == answer == "My answer is #### 42"
        assert record.response == f"<think>{thought}</think>{answer}"
        assert record.reasoning_tokens == len(thought.split(" ")) and record.extracted == "42"


def test_a_reply_cut_off_in_its_reasoning_is_its_own_failure(memory_tasks):
    with FakeOpenAIServer(reasoning=True) as fake:
        results = evaluate_model(
            "fake-model", ["mem-GSM8K"], backend="openai", base_urls=[fake.url], limit=3,
            generation=GenerationConfig(max_new_tokens=8),
        )  # fmt: skip
    assert results["mem-GSM8K"].failures == {"truncated_in_reasoning": 3}
    record = results.samples["mem-GSM8K"][0]
    assert record.finish_reason == "length" and record.answer == "" and record.response.startswith("<think>")
    assert "</think>" not in record.response and record.score == 0.0
