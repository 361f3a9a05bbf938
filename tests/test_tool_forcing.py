"""CalculatorHook / RowTools: nanochat's tool-token state machine, token by token.

Real GPT-2 BPE with nanochat's special tokens (the ``nanochat_tokenizer`` fixture). Each test pushes
the tokens a model would write and checks what the hook asks to force, against nanochat's engine:
``<|output_start|>`` + the result's tokens + ``<|output_end|>`` for a value, nothing for an empty
or refused expression.
"""

from __future__ import annotations

import pytest

from chattasks.tools.calls import ToolCall
from chattasks.tools.forcing import TOOL_TOKENS, CalculatorHook

transformers = pytest.importorskip("transformers")

HOSTILE = [
    "__import__('os').system('touch {canary}')",
    "open('{canary}', 'w').write('x')",
    "().__class__.__bases__[0].__subclasses__()",
    "'a'.__class__.__mro__",
    "(lambda: __import__('pathlib').Path('{canary}').touch())()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "9**9**9",
    "2**999999",
    "10**100000",
    "'x'*10**9",
    "1+" * 600 + "1",
    "(" * 300 + "1" + ")" * 300,
    "globals()",
    "exec('1')",
    "x.count('a')",
]


@pytest.fixture(scope="module")
def tokenizer(nanochat_tokenizer):
    from tiny_models import nanochat_hf_tokenizer

    return nanochat_hf_tokenizer(nanochat_tokenizer)


@pytest.fixture(scope="module")
def hook(tokenizer):
    found = CalculatorHook.for_tokenizer(tokenizer)
    assert found is not None
    return found


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def push_all(row, tokens: list[int]) -> list[list[int]]:
    return [row.push(token) for token in tokens]


def test_a_value_is_forced_as_an_output_block(tokenizer, hook):
    row = hook.new_row()
    answers = push_all(row, ids(tokenizer, "He pays <|python_start|>12*3<|python_end|>"))
    assert answers[:-1] == [[]] * (len(answers) - 1)  # nothing until the expression closes
    assert tokenizer.decode(answers[-1]) == "<|output_start|>36<|output_end|>"
    assert answers[-1] == [
        tokenizer.convert_tokens_to_ids("<|output_start|>"),
        *ids(tokenizer, "36"),
        tokenizer.convert_tokens_to_ids("<|output_end|>"),
    ]
    assert row.calls == [ToolCall("12*3", "36", None, position=len("He pays "))]


def test_every_call_of_a_row_is_journaled_with_its_position(tokenizer, hook):
    row = hook.new_row()
    text = "<|python_start|>1,000/8<|python_end|><|output_start|>125.0<|output_end|> then <|python_start|>'strawberry'.count('r')<|python_end|>"
    answers = push_all(row, ids(tokenizer, text))
    assert tokenizer.decode(answers[-1]) == "<|output_start|>3<|output_end|>"
    assert [(c.expression, c.result) for c in row.calls] == [
        ("1,000/8", "125.0"),
        ("'strawberry'.count('r')", "3"),
    ]
    assert row.calls[1].position == text.index("<|python_start|>'straw")


def test_empty_expression_and_stray_end_force_nothing(tokenizer, hook):
    row = hook.new_row()
    answers = push_all(row, ids(tokenizer, "a<|python_end|>b<|python_start|><|python_end|>c"))
    assert all(answer == [] for answer in answers)
    assert row.calls == []  # nanochat ignores an empty expression entirely


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_expressions_are_refused_and_nothing_runs(tokenizer, hook, template, tmp_path):
    canary = tmp_path / "canary"
    expression = template.format(canary=canary)
    row = hook.new_row()
    answers = push_all(row, ids(tokenizer, f"<|python_start|>{expression}<|python_end|> go on"))
    assert all(answer == [] for answer in answers)  # no output block: nanochat's behaviour on refusal
    (call,) = row.calls
    assert call.result is None and call.error.startswith("calculator:")
    assert not canary.exists()


def test_rows_are_independent(tokenizer, hook):
    first, second = hook.new_row(), hook.new_row()
    first.push(tokenizer.convert_tokens_to_ids("<|python_start|>"))
    assert second.push(tokenizer.convert_tokens_to_ids("<|python_end|>")) == []
    for token in ids(tokenizer, "2+2<|python_end|>"):
        forced = first.push(token)
    assert tokenizer.decode(forced) == "<|output_start|>4<|output_end|>"
    assert second.calls == []


def test_a_tokenizer_without_the_tool_tokens_has_no_hook(smollm2_tokenizer):
    assert CalculatorHook.for_tokenizer(smollm2_tokenizer) is None


def test_the_hook_needs_all_four_token_ids():
    with pytest.raises(ValueError, match="<|output_end|>"):
        CalculatorHook(dict.fromkeys(TOOL_TOKENS[:3], 1), list, str)
