"""Loss masks from any transformers chat template, without ``{% generation %}`` markers.

The ids are exactly ``apply_chat_template(messages, tokenize=True)``'s: the template renders the
whole conversation to text and the text is tokenized at once. The mask is derived, then checked:

1. The template is rendered once per message-role pattern with sentinel contents; that gives the
   scaffolding around each message and which message each content slot holds.
2. The real text must equal that scaffolding with the real contents put back (as they are, or
   stripped where the template trims them); otherwise ``RenderError`` -- the spans are never guessed.
3. A token is trained when it holds a trained character of an assistant message (text and python
   parts) and no character of a tool output, plus the assistant's end-of-turn token: the first
   token after its content, which must be a special token (``end_of_turn="auto"``) or the token
   named by ``end_of_turn=``; ``end_of_turn=None`` trains the content only.

Tool parts are written as text with ``ToolFormat`` (default ``<<code=output>>``). A token that
straddles the edge of the content (e.g. a template space merged with the first word) is trained,
since the model must produce it; one shared by a call and its output (``=-`` before a negative
result) is not, since the model must never learn to write the tool's answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from chattasks.errors import RenderError
from chattasks.sft.renderer import Conversation, RenderedConversation, ToolFormat
from chattasks.sft.tokenizer import TextEncoder, backend_of, copy_backend

_SENTINEL = re.compile("\ue000(\\d+)\ue001")
_VARIANTS = (lambda s: s, str.strip, str.rstrip, str.lstrip)


def _sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


class ChatTemplateRenderer:
    """Render with a transformers tokenizer's chat template; mask derived from the text (module docstring)."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        chat_template: str | None = None,
        tool_format: ToolFormat | None = None,
        end_of_turn: str | None = "auto",
        template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not hasattr(tokenizer, "apply_chat_template"):
            raise RenderError(
                f"{type(tokenizer).__name__} has no apply_chat_template: expected a transformers tokenizer"
            )
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        if not self.chat_template:
            raise RenderError(f"{type(tokenizer).__name__} has no chat template: pass chat_template=...")
        backend = backend_of(tokenizer)
        if backend is None:
            raise RenderError("chat-template masks need a fast tokenizer (character offsets); got a slow one")
        self.tokenizer = tokenizer
        self.tool_format = tool_format or ToolFormat()
        self.template_kwargs = dict(template_kwargs or {})
        self._backend = copy_backend(backend)
        self._backend.post_processor = None  # raw offsets: no trimming, nothing added
        self.encoder = TextEncoder(tokenizer)
        specials = {int(i) for i, token in backend.get_added_tokens_decoder().items() if token.special}
        for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
            value = getattr(tokenizer, name, None)
            if isinstance(value, int):
                specials.add(value)
        self.special_ids = np.array(sorted(specials), dtype=np.int64)
        self._special_set = frozenset(specials)
        if end_of_turn in (None, "auto"):
            self.end_of_turn_id: int | None = None
        else:
            found = self.encoder.token_id(end_of_turn)
            if found is None:
                raise RenderError(f"end_of_turn {end_of_turn!r} is not a single token of this tokenizer")
            self.end_of_turn_id = found
        self.end_of_turn = end_of_turn
        pad = getattr(tokenizer, "pad_token_id", None)
        pad = pad if pad is not None else getattr(tokenizer, "eos_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self._scaffolds: dict[tuple[str, ...], tuple[list[str], list[int]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scaffolds"] = {}
        return state

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens included."""
        return self.encoder.decode(ids)

    def apply(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
        """The template's text for ``messages`` (RenderError when the template refuses them)."""
        try:
            text = self.tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                chat_template=self.chat_template,
                **self.template_kwargs,
            )
        except Exception as exc:  # jinja raises its own and the template's errors
            roles = ",".join(m["role"] for m in messages)
            raise RenderError(
                f"chat template failed on roles [{roles}]: {type(exc).__name__}: {exc}"
            ) from exc
        return str(text)

    def _scaffold(self, roles: tuple[str, ...]) -> tuple[list[str], list[int]]:
        """Scaffolding strings around the content slots, and the message each slot holds."""
        cached = self._scaffolds.get(roles)
        if cached is None:
            text = self.apply([{"role": role, "content": _sentinel(i)} for i, role in enumerate(roles)])
            pieces = _SENTINEL.split(text)
            cached = (pieces[0::2], [int(i) for i in pieces[1::2]])
            self._scaffolds[roles] = cached
        return cached

    def _locate(
        self, text: str, contents: list[str], roles: tuple[str, ...]
    ) -> list[tuple[int, int, int, int]]:
        """(message, origin, start, end) of every content slot in ``text``: the content's characters are
        ``text[start:end]`` and its character ``i`` sits at ``origin + i`` (a trimmed content starts later).
        RenderError when the text is not the scaffolding with the contents put back."""
        scaffold, slots = self._scaffold(roles)
        found: list[tuple[int, int, int, int]] = []
        position = len(scaffold[0])
        if not text.startswith(scaffold[0]):
            raise self._mismatch(roles, 0)
        for k, message in enumerate(slots):
            after = scaffold[k + 1]
            for variant in _VARIANTS:
                value = variant(contents[message])
                if text.startswith(value, position) and text.startswith(after, position + len(value)):
                    break
            else:
                raise self._mismatch(roles, message)
            offset = contents[message].find(value) if value else 0
            found.append((message, position - offset, position, position + len(value)))
            position += len(value) + len(after)
        if position != len(text):
            raise self._mismatch(roles, slots[-1] if slots else 0)
        return found

    def _mismatch(self, roles: tuple[str, ...], message: int) -> RenderError:
        return RenderError(
            f"chat template output around message {message} (roles [{','.join(roles)}]) is not its scaffolding "
            "plus the message contents: the template rewrites content, so exact assistant spans cannot be derived"
        )

    def render_batch(self, conversations: Sequence[Conversation]) -> list[RenderedConversation]:
        """Render each conversation (untruncated): template text, one batched tokenization, derived masks."""
        texts: list[str] = []
        layouts = []
        for conversation in conversations:
            messages = conversation.get("messages") if isinstance(conversation, dict) else None
            if not isinstance(messages, list) or not messages:
                raise RenderError("conversation: expected a dict with a non-empty 'messages' list")
            plain: list[dict[str, str]] = []
            contents: list[str] = []
            trained: dict[int, list[tuple[int, int]]] = {}
            for i, message in enumerate(messages):
                role = message["role"]
                if role == "assistant":
                    content, spans = self.tool_format.spans(message["content"])
                    trained[i] = spans
                else:
                    content = message["content"]
                    if not isinstance(content, str):
                        raise RenderError(f"message {i}: {role} content must be a string")
                plain.append({"role": role, "content": content})
                contents.append(content)
            text = self.apply(plain)
            roles = tuple(m["role"] for m in plain)
            slots = self._locate(text, contents, roles)
            missing = set(trained) - {slot[0] for slot in slots}
            if missing:
                raise RenderError(
                    f"chat template drops assistant message {min(missing)} (roles [{','.join(roles)}])"
                )
            texts.append(text)
            layouts.append((slots, trained, len(text)))
        encodings = self._backend.encode_batch(texts, add_special_tokens=False) if texts else []
        return [self._mask(encoding, *layout) for encoding, layout in zip(encodings, layouts)]

    def _mask(
        self,
        encoding: Any,
        slots: list[tuple[int, int, int, int]],
        trained: dict[int, list[tuple[int, int]]],
        length: int,
    ) -> RenderedConversation:
        ids = np.array(encoding.ids, dtype=np.int32)
        mask = np.zeros(len(ids), dtype=np.uint8)
        locate = _TokenLocator(encoding, len(ids), length)
        for message, origin, start, end in slots:
            spans = trained.get(message)
            if spans is None:
                continue
            for train, (a, b) in _cover(spans, end - origin):
                a, b = max(origin + a, start), min(origin + b, end)  # a trimmed content loses its edges
                if a < b:  # tokens holding a tool output's character are never trained, even shared ones
                    mask[locate.first_overlapping(a) : locate.after_overlapping(b)] = train
            eot = locate.after_overlapping(end)  # the first token starting at or after the content's end
            if self.end_of_turn == "auto":
                if eot >= len(ids) or int(ids[eot]) not in self._special_set:
                    after = (
                        self.encoder.decode(ids[eot : eot + 1].tolist()) if eot < len(ids) else "end of text"
                    )
                    raise RenderError(
                        f"assistant message {message}: the token after its content ({after!r}) is not a special "
                        "end-of-turn token; pass end_of_turn='<token>' or end_of_turn=None"
                    )
                mask[eot] = 1
            elif self.end_of_turn_id is not None:
                hits = np.flatnonzero(ids[eot:] == self.end_of_turn_id)
                if not len(hits):
                    raise RenderError(
                        f"assistant message {message}: no {self.end_of_turn!r} after its content"
                    )
                mask[eot + hits[0]] = 1
        return RenderedConversation(ids, mask)


def _cover(trained: list[tuple[int, int]], length: int) -> list[tuple[int, tuple[int, int]]]:
    """(1, span) for each trained span, then (0, span) for each gap between them (tool outputs)."""
    gaps, at = [], 0
    for a, b in trained:
        if at < a:
            gaps.append((0, (at, a)))
        at = b
    if at < length:
        gaps.append((0, (at, length)))
    return [(1, span) for span in trained] + gaps


class _TokenLocator:
    """Character -> token lookups on one encoding (Rust-side lookups; full offsets only as a fallback)."""

    def __init__(self, encoding: Any, count: int, length: int) -> None:
        self.encoding, self.count, self.length = encoding, count, length
        self._starts: np.ndarray | None = None
        self._ends: np.ndarray | None = None

    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        if self._starts is None or self._ends is None:
            offsets = np.array(self.encoding.offsets, dtype=np.int64).reshape(-1, 2)
            self._starts, self._ends = offsets[:, 0], offsets[:, 1]
        return self._starts, self._ends

    def first_overlapping(self, char: int) -> int:
        """The first token ending after ``char`` (the first to hold any character from ``char`` on)."""
        token = self.encoding.char_to_token(char) if char < self.length else None
        if token is None:
            return int(np.searchsorted(self._offsets()[1], char, side="right"))
        return int(token)

    def after_overlapping(self, char: int) -> int:
        """The first token starting at or after ``char`` (every token before it holds a character before ``char``)."""
        if char >= self.length:
            return self.count
        token = self.encoding.char_to_token(char)
        if token is None:
            return int(np.searchsorted(self._offsets()[0], char, side="left"))
        token = int(token)
        while token < self.count and self.encoding.token_to_chars(token)[0] < char:
            token += 1
        return token
