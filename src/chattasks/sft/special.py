"""nanochat's conversation rendering: special tokens around every turn, nanochat's loss mask exactly.

A conversation becomes (mask in brackets)::

    <|bos|>[0]
    <|user_start|>[0] user text[0] <|user_end|>[0]
    <|assistant_start|>[0] assistant text[1] <|assistant_end|>[1]
    ... and, inside an assistant turn given as parts:
    text part[1]   <|python_start|>[1] code[1] <|python_end|>[1]
    <|output_start|>[0] tool output[0] <|output_end|>[0]

A leading system message is merged into the first user message as ``system + "\\n\\n" + user``
(nanochat has no system turn). Each piece of text is encoded on its own, as nanochat does, with
special-token strings inside text kept as text. The tokenizer must hold the nine special tokens
(``<|endoftext|>`` stands in for ``<|bos|>``, as in nanochat's tiktoken tokenizers) or be given
their ids with ``special_ids=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chattasks.errors import InvalidConversation, RenderError
from chattasks.sft.renderer import Conversation, RenderedConversation
from chattasks.sft.tokenizer import TextEncoder

NANOCHAT_SPECIAL_TOKENS = (
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
)
BOS_FALLBACK = "<|endoftext|>"  # nanochat's name for BOS in tiktoken's pretrained encodings


def _lookup(encoder: TextEncoder, special_ids: Mapping[str, int] | None) -> tuple[dict[str, int], list[str]]:
    found: dict[str, int] = {}
    missing: list[str] = []
    given = dict(special_ids or {})
    for name in NANOCHAT_SPECIAL_TOKENS:
        value = given.get(name)
        if value is None:
            value = encoder.token_id(name)
            if value is None and name == "<|bos|>":
                value = encoder.token_id(BOS_FALLBACK)
        if value is None:
            missing.append(name)
        else:
            found[name] = int(value)
    return found, missing


def missing_special_tokens(tokenizer: Any) -> list[str]:
    """nanochat special tokens ``tokenizer`` lacks as single tokens (empty when it has them all)."""
    try:
        return _lookup(TextEncoder(tokenizer), None)[1]
    except Exception:  # an unsupported tokenizer has none of them
        return list(NANOCHAT_SPECIAL_TOKENS)


def _turns(conversation: Conversation) -> list[Any]:
    """The messages to render: a leading system message merged into the first user message."""
    messages = conversation.get("messages") if isinstance(conversation, dict) else None
    if not isinstance(messages, list) or not messages:
        raise InvalidConversation("conversation: expected a dict with a non-empty 'messages' list")
    first = messages[0]
    if isinstance(first, dict) and first.get("role") == "system":
        if len(messages) < 2 or messages[1].get("role") != "user":
            raise InvalidConversation("message 1: a system message must be followed by a user message")
        merged = {"role": "user", "content": f"{first.get('content')}\n\n{messages[1].get('content')}"}
        messages = [merged, *messages[2:]]
    return messages


def _add_text(segments: list[tuple[int, int]], texts: list[str], value: str, mask: int) -> None:
    """Append a text segment: ``value`` goes to ``texts``, its segment refers to it as -1-index."""
    texts.append(value)
    segments.append((-len(texts), mask))


class SpecialTokenRenderer:
    """Render conversations with nanochat's special tokens and its loss mask (see the module docstring)."""

    def __init__(self, tokenizer: Any, *, special_ids: Mapping[str, int] | None = None) -> None:
        self.encoder = tokenizer if isinstance(tokenizer, TextEncoder) else TextEncoder(tokenizer)
        ids, missing = _lookup(self.encoder, special_ids)
        if missing:
            raise RenderError(
                f"tokenizer lacks nanochat special tokens {', '.join(missing)}: add them or pass special_ids={{...}}"
            )
        if len(set(ids.values())) != len(ids):
            raise RenderError(f"nanochat special tokens must have distinct ids, got {ids}")
        self.special_ids = ids
        self.pad_id = ids["<|bos|>"]  # nanochat pads rows with BOS (mask 0)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens included."""
        return self.encoder.decode(ids)

    def _segments(self, conversation: Conversation, texts: list[str]) -> list[tuple[int, int]]:
        """(token or -1-text_index, mask) segments of one conversation; texts are appended to ``texts``."""
        special = self.special_ids
        segments: list[tuple[int, int]] = [(special["<|bos|>"], 0)]
        for i, message in enumerate(_turns(conversation)):
            role = message.get("role") if isinstance(message, dict) else None
            expected = "user" if i % 2 == 0 else "assistant"
            if role != expected:
                raise InvalidConversation(
                    f"message {i}: role {role!r}: expected {expected!r} (roles alternate)"
                )
            content = message.get("content")
            if role == "user":
                if not isinstance(content, str):
                    raise InvalidConversation(f"message {i}: user content must be a string")
                segments.append((special["<|user_start|>"], 0))
                _add_text(segments, texts, content, 0)
                segments.append((special["<|user_end|>"], 0))
                continue
            segments.append((special["<|assistant_start|>"], 0))
            self._assistant_segments(i, content, segments, texts)
            segments.append((special["<|assistant_end|>"], 1))
        return segments

    def _assistant_segments(
        self, i: int, content: Any, segments: list[tuple[int, int]], texts: list[str]
    ) -> None:
        """Append the segments of message ``i``'s assistant content: a string or a list of parts."""
        special = self.special_ids
        if isinstance(content, str):
            _add_text(segments, texts, content, 1)
            return
        if not isinstance(content, list):
            raise InvalidConversation(f"message {i}: assistant content must be a string or a list of parts")
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            value = part.get("text") if isinstance(part, dict) else None
            if not isinstance(value, str):
                raise InvalidConversation(f"message {i} part {j}: text must be a string")
            if kind == "text":
                _add_text(segments, texts, value, 1)
            elif kind == "python":
                segments.append((special["<|python_start|>"], 1))
                _add_text(segments, texts, value, 1)
                segments.append((special["<|python_end|>"], 1))
            elif kind == "python_output":
                segments.append((special["<|output_start|>"], 0))
                _add_text(segments, texts, value, 0)
                segments.append((special["<|output_end|>"], 0))
            else:
                raise InvalidConversation(
                    f"message {i} part {j}: type {kind!r} is not one of text, python, python_output"
                )

    def render_batch(self, conversations: Sequence[Conversation]) -> list[RenderedConversation]:
        """Render each conversation (untruncated), encoding all their texts in one tokenizer call."""
        texts: list[str] = []
        plans = [self._segments(conversation, texts) for conversation in conversations]
        encoded = self.encoder.encode_batch(texts) if texts else []
        out = []
        for segments in plans:
            ids: list[int] = []
            lengths: list[int] = []
            values: list[int] = []
            for token, mask in segments:
                if token >= 0:
                    ids.append(token)
                    lengths.append(1)
                else:
                    piece = encoded[-token - 1]
                    ids.extend(piece)
                    lengths.append(len(piece))
                values.append(mask)
            out.append(
                RenderedConversation(
                    np.array(ids, dtype=np.int32), np.repeat(np.array(values, dtype=np.uint8), lengths)
                )
            )
        return out
