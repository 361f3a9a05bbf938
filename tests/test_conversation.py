"""The conversation schema validator shared by every task and loader."""

import pytest

from chattasks import InvalidConversation, conversation_problems, validate_conversation, validate_messages

U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
S = {"role": "system", "content": "be brief"}
PARTS = {
    "role": "assistant",
    "content": [
        {"type": "text", "text": "2+2 is "},
        {"type": "python", "text": "2+2"},
        {"type": "python_output", "text": "4"},
        {"type": "text", "text": "\n#### 4"},
    ],
}


@pytest.mark.parametrize("messages", [[U, A], [S, U, A], [U, A, U, A], [U, PARTS], [U]])
def test_valid_conversations(messages):
    assert conversation_problems(messages) == []
    validate_conversation({"messages": messages, "extra": 1})


@pytest.mark.parametrize(
    ("messages", "fault"),
    [
        ({"role": "user"}, "expected a list"),
        ([], "at least 1"),
        ([A, U], "message 0: role 'assistant': expected 'user'"),
        ([U, S], "a system message comes only first"),
        ([U, U], "message 1: role 'user': expected 'assistant'"),
        ([U, {"role": "tool", "content": "x"}], "role 'tool' is not one of"),
        ([{"role": "user", "content": ["x"]}, A], "message 0: content must be a string"),
        ([U, {"role": "assistant"}], "missing field 'content'"),
        ([U, "hello"], "message 1: expected an object"),
        ([U, {"role": "assistant", "content": [{"type": "code", "text": "x"}]}], "part 0: type 'code'"),
        (
            [U, {"role": "assistant", "content": [{"type": "text", "text": 1}]}],
            "part 0: text must be a string",
        ),
        ([U, {"role": "assistant", "content": 7}], "a string or a list of parts"),
    ],
)
def test_invalid_conversations_name_the_fault(messages, fault):
    problems = conversation_problems(messages)
    assert any(fault in p for p in problems), problems
    with pytest.raises(InvalidConversation, match="row 7"):
        validate_messages(messages, source="row 7")


def test_every_fault_is_collected():
    problems = conversation_problems([A, {"role": "user", "content": 1}])
    assert len(problems) == 3


def test_rules_for_stricter_formats():
    assert conversation_problems([S, U, A], allow_system=False)
    assert conversation_problems([U, PARTS], allow_parts=False)
    assert conversation_problems([U], min_messages=2)


def test_invalid_conversation_is_a_value_error():
    with pytest.raises(ValueError):
        validate_conversation({"no": "messages"})
