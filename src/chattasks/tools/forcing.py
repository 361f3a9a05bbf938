"""The calculator during generation, for models that write nanochat's tool tokens.

A generation loop keeps one ``RowTools`` per row (``CalculatorHook.new_row()``) and gives it
every token the row's sequence receives, sampled or forced, with ``push(token)``; ``push``
answers the tokens to force into that row next (usually none). As nanochat's engine does:

- ``<|python_start|>`` opens an expression; the tokens up to ``<|python_end|>`` are decoded and
  handed to chattasks' AST calculator (never ``eval``);
- a value comes back as ``<|output_start|>`` + the tokens of ``str(value)`` + ``<|output_end|>``,
  which the loop writes into the row one token per step instead of sampling (the model reads
  them as its next inputs, so everything after them is generated knowing the result);
- an empty expression gives nothing, and an expression the calculator refuses gives no output
  either (as nanochat), but the refusal is journaled.

Rows are independent: a row receiving its tool output does not hold the others back. Every
call is kept in ``RowTools.calls`` with its position in the decoded reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chattasks.tools.calls import ToolCall, call_calculator

TOOL_TOKENS = ("<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>")
"""The special tokens the hook needs in the tokenizer."""


class RowTools:
    """The tool state of one row of a generation (see the module docstring)."""

    def __init__(self, hook: CalculatorHook) -> None:
        self.hook = hook
        self.tokens: list[int] = []
        """Every token this row received after its prompt, sampled and forced."""
        self.calls: list[ToolCall] = []
        self._start: int | None = None  # index in ``tokens`` of the open <|python_start|>

    def push(self, token: int) -> list[int]:
        """Take the row's next token; the tokens to force into the row next (often none)."""
        hook = self.hook
        self.tokens.append(token)
        if token == hook.python_start:
            self._start = len(self.tokens) - 1
            return []
        if token != hook.python_end or self._start is None:
            return []
        start, self._start = self._start, None
        expression_ids = self.tokens[start + 1 : -1]
        if not expression_ids:
            return []
        call = call_calculator(hook.decode(expression_ids), len(hook.decode(self.tokens[:start])))
        self.calls.append(call)
        if call.result is None:
            return []
        return [hook.output_start, *hook.encode(call.result), hook.output_end]


class CalculatorHook:
    """Per-row calculator forcing for a tokenizer with nanochat's tool tokens.

    ``special_ids`` maps the four ``TOOL_TOKENS`` to their ids; ``encode`` turns a result into
    ids (plain text, no special tokens added) and ``decode`` ids into text (special tokens kept,
    as the journaled reply shows them).
    """

    def __init__(
        self,
        special_ids: Mapping[str, int],
        encode: Callable[[str], list[int]],
        decode: Callable[[Sequence[int]], str],
    ) -> None:
        missing = [name for name in TOOL_TOKENS if name not in special_ids]
        if missing:
            raise ValueError(f"CalculatorHook needs the ids of {', '.join(missing)}")
        self.python_start = int(special_ids["<|python_start|>"])
        self.python_end = int(special_ids["<|python_end|>"])
        self.output_start = int(special_ids["<|output_start|>"])
        self.output_end = int(special_ids["<|output_end|>"])
        self.encode = encode
        self.decode = decode

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> CalculatorHook | None:
        """The hook of a transformers tokenizer holding the four tool tokens, else None."""
        ids = {}
        for name in TOOL_TOKENS:
            value = tokenizer.convert_tokens_to_ids(name)
            if value is None or value == getattr(tokenizer, "unk_token_id", None):
                return None
            ids[name] = int(value)
        if len(set(ids.values())) != len(ids):
            return None
        return cls(
            ids,
            lambda text: list(tokenizer.encode(text, add_special_tokens=False)),
            lambda tokens: str(tokenizer.decode(list(tokens), skip_special_tokens=False)),
        )

    def new_row(self) -> RowTools:
        """The state of a new row."""
        return RowTools(self)
