"""The hf backend with the calculator: nanochat's tool tokens forced in, or tools through a chat template.

Tiny real GPT-2 models (``tiny_models.scripted_gpt2``) saved to disk and loaded by ``HFBackend``
like any model, so the backend's whole generation path runs: one with nanochat's tokenizer (GPT-2
BPE + special tokens) that calls the calculator with ``<|python_start|>``, one with SmolLM2's
tokenizer and a chat template taking ``tools=`` that writes a ``<tool_call>`` and, once given the
tool's answer, the final answer. Budget: ~20 s.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chattasks.errors import BackendError
from chattasks.eval.backends.base import Completion, GenerationConfig
from chattasks.eval.backends.hf_toolcalls import nanochat_prompt_ids, template_takes_tools, tool_mode
from chattasks.task import Task
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tools.calls import CALCULATOR_SCHEMA, ToolCall

pytest.importorskip("transformers")

QUESTION = [{"role": "user", "content": "What is 12 times 3?"}]
OTHER = [{"role": "user", "content": "Say hello to my good old friend, please."}]
NANOCHAT_REPLY = "Let me compute <|python_start|>12*3<|python_end|><|output_start|>36<|output_end|> so #### 36<|assistant_end|>"
OTHER_REPLY = "Hello there, my good old friend! How are you doing on this fine day?<|assistant_end|>"
CALL = '<tool_call>{"name": "calculator", "arguments": {"expression": "12*3"}}</tool_call><|im_end|>'
ANSWER = "The product is 36.\n#### 36<|im_end|>"


class OneQuestionGSM8K(GSM8K):
    """GSM8K over one row: 12 times 3."""

    def __init__(self, **kwargs: Any) -> None:
        Task.__init__(self, **kwargs)
        self.subset, self.split = "memory", "test"
        self.rows = [{"question": QUESTION[0]["content"], "answer": "12*3=<<12*3=36>>36\n#### 36"}]


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def save(model, tokenizer, folder) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def nanochat_tok(nanochat_tokenizer):
    from tiny_models import NANOCHAT_TEMPLATE, nanochat_hf_tokenizer

    return nanochat_hf_tokenizer(nanochat_tokenizer, NANOCHAT_TEMPLATE)


@pytest.fixture(scope="module")
def nanochat_backend(nanochat_tok, tmp_path_factory):
    from tiny_models import WRONG, scripted_gpt2

    from chattasks.eval.backends.hf import HFBackend

    tok = nanochat_tok
    reply = ids(tok, NANOCHAT_REPLY)
    start = reply.index(tok.convert_tokens_to_ids("<|output_start|>"))
    scripts = [
        (nanochat_prompt_ids(tok, QUESTION), reply, range(start, start + 3)),
        (nanochat_prompt_ids(tok, OTHER), ids(tok, OTHER_REPLY), ()),
    ]
    model = scripted_gpt2(len(tok), scripts, wrong_id=ids(tok, WRONG)[0])
    backend = HFBackend(save(model, tok, tmp_path_factory.mktemp("nanochat")), dtype="float32", device="cpu")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hermes_tok(smollm2_tokenizer):
    from tiny_models import HERMES_TOOLS_TEMPLATE

    tok = smollm2_tokenizer.__class__(tokenizer_object=smollm2_tokenizer.backend_tokenizer)
    tok.chat_template = HERMES_TOOLS_TEMPLATE
    tok.eos_token = "<|im_end|>"
    return tok


def render(tok, messages) -> list[int]:
    text = tok.apply_chat_template(
        messages, tools=[CALCULATOR_SCHEMA], tokenize=False, add_generation_prompt=True
    )
    return ids(tok, text)


@pytest.fixture(scope="module")
def template_backend(hermes_tok, tmp_path_factory):
    from tiny_models import scripted_gpt2

    from chattasks.eval.backends.hf import HFBackend

    tok = hermes_tok
    called = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_0_0",
                "type": "function",
                "function": {"name": "calculator", "arguments": {"expression": "12*3"}},
            }
        ],
    }
    answered = {"role": "tool", "tool_call_id": "call_0_0", "name": "calculator", "content": "36"}
    scripts = [
        (render(tok, QUESTION), ids(tok, CALL), ()),
        (render(tok, [*QUESTION, called, answered]), ids(tok, ANSWER), ()),
    ]
    model = scripted_gpt2(len(tok), scripts, positions=1024)
    backend = HFBackend(save(model, tok, tmp_path_factory.mktemp("hermes")), dtype="float32", device="cpu")
    yield backend
    backend.close()


# ---- how a model calls tools ----------------------------------------------------------------


def test_tool_mode_is_read_from_the_tokenizer(nanochat_tok, hermes_tok, smollm2_tokenizer):
    assert tool_mode(nanochat_tok) == "nanochat"
    assert tool_mode(hermes_tok) == "template"
    assert tool_mode(smollm2_tokenizer) is None  # SmolLM2's own template takes no tools


def test_a_template_takes_tools_when_it_reads_the_variable():
    from tiny_models import HERMES_TOOLS_TEMPLATE, NANOCHAT_TEMPLATE

    assert template_takes_tools(HERMES_TOOLS_TEMPLATE)
    assert not template_takes_tools(NANOCHAT_TEMPLATE)
    assert template_takes_tools("{% generation %}{{ tools }}{% endgeneration %}")  # unknown tag: read as text
    assert not template_takes_tools(None)


def test_nanochat_rendering_matches_the_template(nanochat_backend, nanochat_tok):
    chat = [
        {"role": "system", "content": "Be brief."},
        *QUESTION,
        {"role": "assistant", "content": "Ok"},
        *OTHER,
    ]
    merged = [{"role": "user", "content": "Be brief.\n\n" + QUESTION[0]["content"]}, *chat[2:]]
    assert nanochat_prompt_ids(nanochat_tok, chat) == nanochat_backend.chat_ids(merged)


# ---- nanochat's tool tokens -------------------------------------------------------------------


def test_the_calculator_output_is_forced_into_the_reply(nanochat_backend):
    replies = nanochat_backend.generate([QUESTION, OTHER], GenerationConfig(max_new_tokens=40))
    (first,), (second,) = replies
    assert isinstance(first, Completion)
    assert first.text == NANOCHAT_REPLY.removesuffix("<|assistant_end|>")
    assert first.tool_calls == (ToolCall("12*3", "36", None, position=len("Let me compute ")),)
    assert (first.finish_reason, first.tools, first.tokens) == ("stop", "calculator", 16)
    assert second.text == OTHER_REPLY.removesuffix("<|assistant_end|>") and second.tool_calls == ()
    assert nanochat_backend.describe()["tool_mode"] == "nanochat"


def test_without_tools_the_model_writes_its_own_guess(nanochat_backend):
    (reply,), _ = nanochat_backend.generate(
        [QUESTION, OTHER], GenerationConfig(max_new_tokens=12, tools="none")
    )
    assert reply.tool_calls == () and " wrong" in reply.text and "36" not in reply.text


def test_gsm8k_through_the_runner_journals_the_call(nanochat_backend, tmp_path):
    from chattasks.eval.runner import evaluate_model

    results = evaluate_model(nanochat_backend, [OneQuestionGSM8K()], output=tmp_path / "run")
    (record,) = results.samples["OneQuestionGSM8K"]
    assert record.score == 1.0 and record.extracted == "36"
    assert record.tool_calls == [
        {"expression": "12*3", "result": "36", "error": None, "position": 15, "tool": "calculator"}
    ]
    assert record.details["tools"] == "calculator" and record.finish_reason == "stop"
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["generation"]["tools"] == "auto"
    assert saved["tasks"]["OneQuestionGSM8K"]["tools"] == "calculator"


def test_tools_none_is_recorded_and_offers_nothing(nanochat_backend, tmp_path):
    from chattasks.eval.runner import evaluate_model

    results = evaluate_model(
        nanochat_backend, [OneQuestionGSM8K()], generation=GenerationConfig(max_new_tokens=12, tools="none")
    )
    (record,) = results.samples["OneQuestionGSM8K"]
    assert record.tool_calls == [] and "tools" not in record.details and record.score == 0.0
    assert results["OneQuestionGSM8K"].tools is None


# ---- tools through a chat template ------------------------------------------------------------


def test_a_template_model_gets_the_tool_result_and_answers(template_backend):
    (reply,) = template_backend.generate([QUESTION], GenerationConfig(max_new_tokens=60))[0]
    assert reply.text == "The product is 36.\n#### 36"
    assert reply.tool_calls == (ToolCall("12*3", "36", None, position=0),)
    assert reply.finish_reason == "stop" and reply.tools == "calculator"
    assert (
        reply.tokens
        == len(ids(template_backend.tokenizer, CALL)) + len(ids(template_backend.tokenizer, ANSWER)) - 2
    )


def test_calculator_for_a_model_that_calls_no_tools_is_an_error(tmp_path, smollm2_tokenizer):
    from tiny_models import scripted_gpt2

    from chattasks.eval.backends.hf import HFBackend

    model = scripted_gpt2(len(smollm2_tokenizer), [], width=32)
    backend = HFBackend(save(model, smollm2_tokenizer, tmp_path), dtype="float32", device="cpu")
    try:
        assert backend.tool_mode is None
        with pytest.raises(BackendError, match="calls no tools.*--tools none"):
            backend.generate([QUESTION], GenerationConfig(max_new_tokens=4, tools="calculator"))
        (reply,) = backend.generate([QUESTION], GenerationConfig(max_new_tokens=4))[0]  # auto: no tools
        assert reply.tool_calls == () and reply.tools is None
    finally:
        backend.close()
