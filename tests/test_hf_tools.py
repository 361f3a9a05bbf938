"""generate_with_tools: the batched KV-cache decoding loop forcing calculator output into one row.

The model is a real transformers GPT-2 (``tiny_models.scripted_gpt2``) whose weights make it write
a given reply token by token after a given prompt, and write `` wrong`` where a tool's output is
due, so a loop that samples instead of forcing shows. Two prompts of different lengths share the
batch: the first calls the calculator, the second never does and keeps generating while the
first receives its output. Budget: ~10 s (mostly importing transformers).
"""

from __future__ import annotations

import pytest

from chattasks.eval.backends.hf_tools import generate_with_tools
from chattasks.tools.calls import ToolCall
from chattasks.tools.forcing import CalculatorHook

pytest.importorskip("transformers")

FIRST_PROMPT = "<|bos|><|user_start|>What is 12 times 3?<|user_end|><|assistant_start|>"
SECOND_PROMPT = "<|bos|><|user_start|>Say hello to my good old friend, please.<|user_end|><|assistant_start|>"
THIRD_PROMPT = "<|bos|><|user_start|>Import os.<|user_end|><|assistant_start|>"
FIRST_REPLY = "Let me compute <|python_start|>12*3<|python_end|><|output_start|>36<|output_end|> so #### 36<|assistant_end|>"
SECOND_REPLY = "Hello there, my good old friend! How are you doing on this fine day?<|assistant_end|>"
THIRD_REPLY = "Sure <|python_start|>__import__('os')<|python_end|> no luck<|assistant_end|>"


class Scripted:
    """The tokenizer, the scripted model and the token ids of the prompts and replies."""

    def __init__(self, tokenizer):
        from tiny_models import WRONG, scripted_gpt2

        self.tokenizer = tokenizer
        self.ids = lambda text: tokenizer.encode(text, add_special_tokens=False)
        self.special = tokenizer.convert_tokens_to_ids
        self.prompts = [self.ids(FIRST_PROMPT), self.ids(SECOND_PROMPT), self.ids(THIRD_PROMPT)]
        self.replies = [self.ids(FIRST_REPLY), self.ids(SECOND_REPLY), self.ids(THIRD_REPLY)]
        start = self.replies[0].index(self.special("<|output_start|>"))
        end = self.replies[0].index(self.special("<|output_end|>"))
        self.forced = list(range(start, end + 1))
        self.wrong = self.ids(WRONG)[0]
        scripts = [
            (self.prompts[0], self.replies[0], self.forced),
            (self.prompts[1], self.replies[1], ()),
            (self.prompts[2], self.replies[2], ()),
        ]
        self.model = scripted_gpt2(len(tokenizer), scripts, wrong_id=self.wrong)
        self.hook = CalculatorHook.for_tokenizer(tokenizer)

    def run(self, rows, *, hooks=True, max_new_tokens=64, limits=None):
        states = [self.hook.new_row() for _ in rows] if hooks else None
        generated = generate_with_tools(
            self.model,
            [self.prompts[i] for i in rows],
            max_new_tokens=max_new_tokens,
            stop_ids=[self.special("<|assistant_end|>")],
            pad_id=self.special("<|bos|>"),
            hooks=states,
            limits=limits,
        )
        return generated, states


@pytest.fixture(scope="module")
def scripted(nanochat_tokenizer):
    from tiny_models import nanochat_hf_tokenizer

    return Scripted(nanochat_hf_tokenizer(nanochat_tokenizer))


def test_the_output_is_forced_while_the_other_row_keeps_generating(scripted):
    (first, second), (tools, _) = scripted.run([0, 1])
    assert first.tokens == scripted.replies[0][:-1] and first.finish_reason == "stop"
    assert [k for k, forced in enumerate(first.forced) if forced] == scripted.forced
    assert tools.calls == [ToolCall("12*3", "36", None, position=len("Let me compute "))]
    # the other row was decoded by the model at every step, the forced ones of the first row included
    assert second.tokens == scripted.replies[1][:-1] and not any(second.forced)
    assert len(second.tokens) > scripted.forced[-1] + 1
    assert second.finish_reason == "stop"


def test_without_the_hook_the_model_writes_no_tool_output(scripted):
    (first,), _ = scripted.run([0], hooks=False, max_new_tokens=len(scripted.forced) + 12)
    due = scripted.forced[0]
    assert first.tokens[:due] == scripted.replies[0][:due]
    assert first.tokens[due] == scripted.wrong  # what the model itself writes where the output is forced
    assert scripted.special("<|output_start|>") not in first.tokens


def test_what_follows_the_output_was_generated_knowing_it(scripted):
    (first,), _ = scripted.run([0])
    after = scripted.forced[-1] + 1
    # the model writes " so" only after reading <|output_end|> at that position: the forced tokens were fed
    assert scripted.tokenizer.decode(first.tokens[after:]) == " so #### 36"
    assert not first.forced[after]


def test_a_refused_expression_forces_nothing_and_the_row_goes_on(scripted):
    (third, second), (tools, _) = scripted.run([2, 1])
    assert third.tokens == scripted.replies[2][:-1] and not any(third.forced)
    (call,) = tools.calls
    assert call.expression == "__import__('os')" and call.result is None and "only call allowed" in call.error
    assert second.tokens == scripted.replies[1][:-1]


def test_forced_tokens_count_toward_the_limit(scripted):
    limit = scripted.forced[-1] + 1  # the reply up to and including <|output_end|>
    (first,), _ = scripted.run([0], max_new_tokens=limit)
    assert first.tokens == scripted.replies[0][:limit] and first.finish_reason == "length"


def test_each_row_may_have_its_own_limit(scripted):
    (first, second), _ = scripted.run([0, 1], limits=[3, 100])
    assert first.tokens == scripted.replies[0][:3] and first.finish_reason == "length"
    assert second.tokens == scripted.replies[1][:-1] and second.finish_reason == "stop"


def test_bad_arguments_are_refused(scripted):
    with pytest.raises(ValueError, match="no empty row"):
        generate_with_tools(scripted.model, [[]], max_new_tokens=4, stop_ids=[], pad_id=0)
    with pytest.raises(ValueError, match="2 hooks for 1 rows"):
        generate_with_tools(
            scripted.model, [[1]], max_new_tokens=4, stop_ids=[], pad_id=0, hooks=[None, None]
        )
