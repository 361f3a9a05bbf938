"""What every renderer shares: the ``Renderer`` interface, its output and how tool parts become text.

``Renderer`` turns conversations into ``RenderedConversation``s (token ids and a loss mask,
1 = trained). The renderers (``chattasks.sft.special``, ``chattasks.sft.template``) and the
function that picks one (``chattasks.sft.render``) import these types from here, so imports point
one way: render -> special / template -> this module.

Tool parts: assistant content may be a list of ``text``/``python``/``python_output`` parts. The
model is trained on text and python parts and never on ``python_output`` (the tool writes it at
inference). Where a format has no tool tokens (chat templates, exports) the parts are written as
text with ``ToolFormat``: by default ``<<expression=output>>``, GSM8K's own calculator notation,
so a GSM8K answer comes back byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from chattasks.errors import RenderError

Conversation = dict[str, Any]


@dataclass(frozen=True)
class RenderedConversation:
    """Token ids (int32) of one conversation and its loss mask (uint8, 1 = trained), of equal length."""

    ids: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_trained(self) -> int:
        """How many tokens the loss is computed on."""
        return int(np.count_nonzero(self.mask))

    def truncate(self, max_len: int | None) -> RenderedConversation:
        """The first ``max_len`` tokens (the documented truncation rule); self when it already fits."""
        if max_len is None or len(self.ids) <= max_len:
            return self
        return RenderedConversation(self.ids[:max_len], self.mask[:max_len])


@dataclass(frozen=True)
class ToolFormat:
    """How tool parts are written as text: ``python_start + code + python_end`` (trained), then
    ``output_start + output + output_end`` (not trained). The default is GSM8K's ``<<code=output>>``."""

    python_start: str = "<<"
    python_end: str = "="
    output_start: str = ""
    output_end: str = ">>"

    def spans(self, content: str | list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
        """The content as one string, and the character spans of it the model is trained on."""
        if isinstance(content, str):
            return content, [(0, len(content))] if content else []
        pieces: list[str] = []
        trained: list[tuple[int, int]] = []
        position = 0
        for part in content:
            kind, text = part.get("type"), part.get("text")
            if not isinstance(text, str):
                raise RenderError(f"assistant part {part!r}: expected a string 'text'")
            if kind == "text":
                piece, train = text, True
            elif kind == "python":
                piece, train = self.python_start + text + self.python_end, True
            elif kind == "python_output":
                piece, train = self.output_start + text + self.output_end, False
            else:
                raise RenderError(f"assistant part type {kind!r}: expected text, python or python_output")
            if train and piece:
                if trained and trained[-1][1] == position:
                    trained[-1] = (trained[-1][0], position + len(piece))
                else:
                    trained.append((position, position + len(piece)))
            pieces.append(piece)
            position += len(piece)
        return "".join(pieces), trained

    def flatten(self, content: str | list[dict[str, str]]) -> str:
        """The content as one string (tool parts written in this format)."""
        return self.spans(content)[0]


@runtime_checkable
class Renderer(Protocol):
    """Turns conversations into ids and loss masks; ``pad_id`` fills packed rows (mask 0)."""

    pad_id: int

    def render_batch(self, conversations: Sequence[Conversation]) -> list[RenderedConversation]:
        """Render each conversation (untruncated); batching lets the tokenizer work in parallel."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens included."""
        ...
