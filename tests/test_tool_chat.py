"""The calculator as a chat tool: a sample's conversation turn by turn, its bound, and calls read from text.

The conversation is driven the way a backend drives it; the callable backend tests at the end run
it for real, from ``evaluate_model`` down, with a Python function that calls the calculator.
"""

from __future__ import annotations

import json
import re

import pytest

from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.runner import evaluate_model
from chattasks.eval.tool_chat import (
    MAX_TOOL_CALLS,
    RequestedCall,
    ToolConversation,
    openai_calls,
    parse_template_calls,
)
from chattasks.tools.calls import CALCULATOR_SCHEMA, ToolCall, call_named

PROMPT = [{"role": "user", "content": "What is 12 times 3?"}]


def calc(expression: str, id: str = "c1") -> RequestedCall:
    return RequestedCall(id, "calculator", json.dumps({"expression": expression}))


def test_a_turn_with_a_call_runs_it_and_asks_again():
    talk = ToolConversation(PROMPT)
    assert talk.add_turn("Let me compute.", [calc("12*3")], finish_reason="tool_calls", tokens=9)
    assert talk.messages[1] == {
        "role": "assistant",
        "content": "Let me compute.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "12*3"}'},
            }
        ],
    }
    assert talk.messages[2] == {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "36"}
    assert not talk.add_turn("So #### 36", finish_reason="stop", tokens=5)
    reply = talk.completion()
    assert (
        reply.text == "Let me compute.\nSo #### 36" and reply.tokens == 14 and reply.finish_reason == "stop"
    )
    assert reply.tool_calls == (ToolCall("12*3", "36", None, position=len("Let me compute.")),)
    assert talk.template_messages()[1]["tool_calls"][0]["function"]["arguments"] == {"expression": "12*3"}


def test_the_number_of_calls_is_bounded():
    talk = ToolConversation(PROMPT, max_calls=3)
    turns = 0
    while talk.add_turn("", [calc(f"{turns}+1", f"c{turns}")]):
        turns += 1
        assert turns < 10, "the conversation never ended"
    # after its third call the model was asked again; the call it then asked for was not run
    assert len(talk.calls) == 3 and turns == 3
    assert talk.completion().finish_reason == "tool_calls"
    assert ToolConversation(PROMPT).max_calls == MAX_TOOL_CALLS


def test_the_token_budget_covers_every_turn():
    talk = ToolConversation(PROMPT, max_new_tokens=20)
    assert talk.add_turn("a", [calc("1+1")], tokens=12) and talk.remaining_tokens == 8
    assert not talk.add_turn("b", [calc("2+2", "c2")], tokens=8)  # budget spent: no further turn
    assert talk.completion().finish_reason == "length" and len(talk.calls) == 2
    unknown = ToolConversation(PROMPT, max_new_tokens=20)
    unknown.add_turn("a", [calc("1+1")])  # a backend that reports no tokens
    assert unknown.remaining_tokens == 20 and unknown.completion().tokens is None


def test_a_refusal_goes_back_to_the_model_as_an_error():
    talk = ToolConversation(PROMPT)
    talk.add_turn("", [calc("__import__('os').getcwd()")])
    (call,) = talk.calls
    assert call.result is None and talk.messages[-1]["content"] == f"error: {call.error}"


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("search", {"q": "x"}, "no tool named 'search'"),
        ("calculator", "{not json", "arguments are not JSON"),
        ("calculator", {"expr": "1+1"}, "expected arguments"),
        ("", "garbage", "malformed tool call"),
    ],
)
def test_calls_that_are_not_calculator_calls_are_errors(name, arguments, error):
    call = call_named(name, arguments, 0)
    assert call.result is None and error in call.error


def test_reasoning_of_each_turn_is_folded_in():
    talk = ToolConversation(PROMPT)
    talk.add_turn("", [calc("12*3")], reasoning="I need a product.")
    talk.add_turn("#### 36", reasoning="Now I know.", finish_reason="stop")
    assert talk.completion().text == "<think>I need a product.</think>\n<think>Now I know.</think>#### 36"


@pytest.mark.parametrize(
    ("text", "head", "calls"),
    [
        (
            'Sure. <tool_call>\n{"name": "calculator", "arguments": {"expression": "2*3"}}\n</tool_call>',
            "Sure. ",
            [("calculator", {"expression": "2*3"})],
        ),
        (  # two Hermes blocks, the last one unclosed (cut at the stop token)
            '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>'
            '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"}}',
            "",
            [("calculator", {"expression": "1+1"}), ("calculator", {"expression": "2+2"})],
        ),
        (
            '[TOOL_CALLS] [{"name": "calculator", "arguments": {"expression": "5-1"}}]',
            "",
            [("calculator", {"expression": "5-1"})],
        ),
        (
            '{"name": "calculator", "parameters": {"expression": "9/3"}}',
            "",
            [("calculator", {"expression": "9/3"})],
        ),
        ("<tool_call>calculator(12*3)</tool_call>", "", [("", "calculator(12*3)")]),
        ("No call here: #### 4", "No call here: #### 4", []),
    ],
)
def test_calls_written_as_text_by_template_models(text, head, calls):
    found_head, found = parse_template_calls(text)
    assert found_head == head and [(c.name, c.arguments) for c in found] == calls


def test_openai_tool_calls_are_read_and_malformed_ones_skipped():
    message = {
        "tool_calls": [
            {
                "id": "a",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "1"}'},
            },
            {"type": "function", "function": {"arguments": "{}"}},
            "junk",
            {"name": "calculator", "arguments": {"expression": "2"}},
        ]
    }
    assert openai_calls(message) == [
        RequestedCall("a", "calculator", '{"expression": "1"}'),
        RequestedCall("call_3", "calculator", {"expression": "2"}),
    ]


# ---- through the callable backend ---------------------------------------------------------------


def marbles(messages, tools=None):
    """A function that calls the calculator on a mem-GSM8K question and answers with the result."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"She has #### {last['content']}"
    if tools is None:
        return "I cannot count. #### 0"
    assert tools == [CALCULATOR_SCHEMA]
    a, b, c = map(int, re.findall(r"\d+", last["content"])[:3])
    return {
        "content": "Let me count.",
        "tool_calls": [{"name": "calculator", "arguments": {"expression": f"{a}+{b}*{c}"}}],
    }


def test_a_function_calls_the_calculator_through_the_runner(memory_tasks, tmp_path):
    results = evaluate_model(marbles, ["mem-GSM8K"], limit=6, output=tmp_path / "run")
    assert results["mem-GSM8K"].accuracy == 1.0 and results["mem-GSM8K"].tools == "calculator"
    record = results.samples["mem-GSM8K"][0]
    assert record.response == "Let me count.\nShe has #### 10"
    assert record.tool_calls == [
        {"expression": "4+2*3", "result": "10", "error": None, "position": 13, "tool": "calculator"}
    ]


def test_tools_none_calls_the_function_without_them(memory_tasks):
    results = evaluate_model(marbles, ["mem-GSM8K"], limit=3, generation=GenerationConfig(tools="none"))
    assert results["mem-GSM8K"].accuracy == 0.0 and results["mem-GSM8K"].tools is None


def test_a_function_without_a_tools_parameter_cannot_be_given_the_calculator(memory_tasks):
    from chattasks.errors import BackendError

    plain = evaluate_model(lambda messages: "#### 10", ["mem-GSM8K"], limit=1)  # auto: no tools, no error
    assert plain["mem-GSM8K"].tools is None
    with pytest.raises(BackendError, match="no tools parameter"):
        evaluate_model(
            lambda messages: "#### 10",
            ["mem-GSM8K"],
            limit=1,
            generation=GenerationConfig(tools="calculator"),
        )
