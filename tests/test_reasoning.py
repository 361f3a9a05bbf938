"""Reasoning apart from the answer: tag pairs, unclosed and nested blocks, templates, folding, token counts."""

from __future__ import annotations

import pytest

from chattasks.eval.reasoning import (
    DEFAULT_TAGS,
    Split,
    fold,
    normalize_tags,
    parse_tags,
    reasoning_token_count,
    resolve_tags,
    split_reasoning,
    tags_in_template,
)

REASONING = (("<reasoning>", "</reasoning>"),)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<think>12*3 is 36</think>\n#### 36", Split("12*3 is 36", "#### 36", True)),
        ("<think>maybe 35, maybe #### 36", Split("maybe 35, maybe #### 36", "", False)),  # unclosed
        ("opened by the prompt: 36</think> #### 36", Split("opened by the prompt: 36", "#### 36", True)),
        ("<think>a<think>b</think>c</think>d", Split("a<think>b</think>c", "d", True)),  # nested
        ("<think>a</think>x <think>b</think>y", Split("a\n\nb", "x y", True)),  # repeated
        ("<think>a</think>x</think> y", Split("a", "x y", True)),  # a stray close tag is dropped
        ("<think>a</think>x<think>b", Split("a\n\nb", "x", False)),  # the second block never closes
        ("<think></think>B", Split("", "B", True)),
        ("  The answer is B. ", Split(None, "The answer is B.", True)),
    ],
)
def test_split_by_the_default_pair(reply, expected):
    assert split_reasoning(reply) == expected


def test_other_pairs_and_a_foreign_tag_inside_a_block():
    assert split_reasoning("<reasoning>x<think>y</reasoning>z", REASONING) == Split("x<think>y", "z", True)
    both = (*DEFAULT_TAGS, *REASONING)
    assert split_reasoning("<reasoning>r</reasoning>a<think>t</think>b", both) == Split("r\n\nt", "ab", True)
    assert split_reasoning("<think>t</think>a", REASONING) == Split(None, "<think>t</think>a", True)


@pytest.mark.parametrize(
    ("template", "pairs"),
    [
        (  # Qwen3's: the generation prompt may open an empty block
            "{%- if enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
            (("<think>", "</think>"),),
        ),
        (
            "{{ '<|begin_of_thought|>' }}...{{ '<|end_of_thought|>' }}",
            (("<|begin_of_thought|>", "<|end_of_thought|>"),),
        ),
        ("[THINK]Think first.[/THINK]", (("[THINK]", "[/THINK]"),)),
        ("<reasoning>\n{{ message.reasoning }}\n</reasoning>", (("<reasoning>", "</reasoning>"),)),
        ("<think> only opens", ()),
        ("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}", ()),
        (None, ()),
    ],
)
def test_pairs_named_by_a_chat_template(template, pairs):
    assert tags_in_template(template) == pairs


def test_the_run_splits_by_its_pairs_and_the_templates():
    assert resolve_tags(None) == DEFAULT_TAGS
    assert resolve_tags(REASONING, "[THINK][/THINK]") == (*REASONING, ("[THINK]", "[/THINK]"))
    assert resolve_tags(None, "<think></think>") == DEFAULT_TAGS  # no pair twice


def test_a_servers_reasoning_is_folded_in_front():
    assert fold("12*3=36", "#### 36") == "<think>12*3=36</think>#### 36"
    assert fold("12*3=", "", cut_off=True) == "<think>12*3="  # cut off before any answer: left open
    assert fold(None, "#### 36") == "#### 36"
    assert fold("r", "a", tags=REASONING) == "<reasoning>r</reasoning>a"
    folded = fold("think", "answer")
    assert split_reasoning(folded) == Split("think", "answer", True)


def test_the_command_line_form_of_the_pairs():
    assert parse_tags("<think>,</think>;<reasoning>,</reasoning>") == (*DEFAULT_TAGS, *REASONING)
    for bad in ("<think>", "<a>,<a>", "<a>,</a>,<b>", ",</a>"):
        with pytest.raises(ValueError, match="OPEN,CLOSE"):
            parse_tags(bad)
    assert normalize_tags([["<a>", "</a>"]]) == (("<a>", "</a>"),) and normalize_tags(None) is None
    with pytest.raises(ValueError, match="at least one"):
        normalize_tags([])


def test_reasoning_tokens_are_counted_on_the_real_tokenizer(nanochat_tokenizer):
    encode = lambda text: nanochat_tokenizer.encode(text).ids  # noqa: E731
    decode = nanochat_tokenizer.decode
    thought = "<think>Twelve times three is thirty-six.</think>"
    tokens = encode(thought + " The answer is #### 36")
    assert reasoning_token_count(tokens, decode, DEFAULT_TAGS) == len(encode(thought))
    assert reasoning_token_count(encode("<think>still thinking"), decode, DEFAULT_TAGS) == len(
        encode("<think>still thinking")
    )
    assert reasoning_token_count(encode("no reasoning here"), decode, DEFAULT_TAGS) is None
