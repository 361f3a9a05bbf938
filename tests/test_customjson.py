"""CustomJSON: JSONL conversations, checked line by line, every fault reported as file:line."""

from __future__ import annotations

import json

import pytest

from chattasks import CustomJSON, InvalidConversation, TaskNotEvaluable, validate_conversation


def test_loads_every_non_blank_line_in_order(fixtures_dir):
    task = CustomJSON(filepath=fixtures_dir / "customjson" / "identity.jsonl")
    assert len(task) == 3
    assert task[0]["messages"][0] == {"role": "user", "content": "Who are you?"}
    assert task[1]["messages"][3]["content"] == "はい。"
    assert task[-1]["messages"][1]["content"] == "ok"
    for conversation in task:
        validate_conversation(conversation)


def test_is_a_generative_training_task(fixtures_dir):
    task = CustomJSON(fixtures_dir / "customjson" / "identity.jsonl")
    assert task.eval_type == "generative"
    assert not task.is_evaluable
    with pytest.raises(TaskNotEvaluable):
        task.evaluate(task[0], "anything")


def test_slicing_works_as_for_any_task(fixtures_dir):
    task = CustomJSON(fixtures_dir / "customjson" / "identity.jsonl", start=1)
    assert len(task) == 2 and len(task[::2]) == 1


def test_every_fault_is_reported_with_file_and_line(fixtures_dir):
    path = fixtures_dir / "customjson" / "broken.jsonl"
    with pytest.raises(InvalidConversation) as raised:
        CustomJSON(path)
    problems = raised.value.problems
    expected = {
        2: "expected a JSON array of messages, got a JSON object",
        3: "expected at least 2 messages, got 1",
        4: "message 0: role 'assistant': expected 'user'",
        5: "invalid JSON",
        7: "message 1: content must be a string, got int",
        8: "message 0: missing field 'content'",
        9: "message 0: role 'system'",
    }
    assert len(problems) == len(expected)
    for problem, (line, fault) in zip(problems, expected.items()):
        assert problem.startswith(f"{path}:{line}: ")
        assert fault in problem
    assert isinstance(raised.value, ValueError)


def test_max_errors_caps_the_report_and_counts_the_rest(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(["{}"] * 30) + "\n")
    with pytest.raises(InvalidConversation, match="and 25 more lines") as raised:
        CustomJSON(path, max_errors=5)
    assert len(raised.value.problems) == 5


def test_missing_file_is_an_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        CustomJSON(missing)


def test_empty_file_is_an_empty_task(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert len(CustomJSON(path)) == 0


def test_crlf_and_unicode_lines(tmp_path):
    path = tmp_path / "crlf.jsonl"
    conversation = [{"role": "user", "content": "naïve\u2028line"}, {"role": "assistant", "content": "✓"}]
    path.write_bytes((json.dumps(conversation, ensure_ascii=False) + "\r\n").encode() * 2)
    task = CustomJSON(path)
    assert len(task) == 2 and task[1]["messages"] == conversation


def test_invalid_utf8_is_reported(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'[{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]\n')
    with pytest.raises(InvalidConversation, match=r"latin1.jsonl:1: "):
        CustomJSON(path)
