"""Rendering a conversation to token ids and a loss mask (1 = trained): picking the renderer.

Two renderers implement ``Renderer`` (``chattasks.sft.renderer``, with the types they share):

- ``SpecialTokenRenderer`` (``chattasks.sft.special``): nanochat's special tokens, nanochat's mask.
- ``ChatTemplateRenderer`` (``chattasks.sft.template``): the chat template of a transformers
  tokenizer; the assistant spans are derived from the rendered text, never assumed.

``render(conversation, tokenizer)`` picks one with ``make_renderer``: the special-token renderer
when the tokenizer holds all of nanochat's special tokens, else the chat template when it has one,
else ``RenderError`` (there is no silent all-ones fallback).

Truncation rule (nanochat's): a conversation longer than ``max_len`` keeps its first ``max_len``
tokens; the rest, trained or not, is dropped. Packing counts every truncation and drops (and
counts) a conversation left with no trained token.

Tool parts (``text``/``python``/``python_output``) are trained on all but the tool's output; where
a format has no tool tokens they are written as text with ``ToolFormat`` (``chattasks.sft.renderer``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from chattasks.errors import RenderError
from chattasks.sft.renderer import Conversation, RenderedConversation, Renderer, ToolFormat
from chattasks.sft.special import SpecialTokenRenderer, missing_special_tokens
from chattasks.sft.template import ChatTemplateRenderer

__all__ = ["Conversation", "RenderedConversation", "Renderer", "ToolFormat", "make_renderer", "render"]


_cache: OrderedDict[int, tuple[Any, Renderer]] = OrderedDict()


def make_renderer(tokenizer: Any, **options: Any) -> Renderer:
    """The renderer for ``tokenizer``: special tokens when it has all of nanochat's, else its chat template.

    ``tokenizer`` may already be a Renderer (returned as is). ``options`` go to the renderer chosen;
    ``special_ids=`` forces the special-token renderer, ``chat_template=`` the template one.
    """
    if isinstance(tokenizer, Renderer):
        return tokenizer
    if "special_ids" in options:
        return SpecialTokenRenderer(tokenizer, **options)
    if "chat_template" not in options and not missing_special_tokens(tokenizer):
        return SpecialTokenRenderer(tokenizer, **options)
    if options.get("chat_template") or getattr(tokenizer, "chat_template", None):
        return ChatTemplateRenderer(tokenizer, **options)
    raise RenderError(
        f"{type(tokenizer).__name__} has neither nanochat's special tokens nor a chat template: "
        "pass special_ids={...} or chat_template=..."
    )


def _cached_renderer(tokenizer: Any) -> Renderer:
    key = id(tokenizer)
    hit = _cache.get(key)
    if hit is not None and hit[0] is tokenizer:
        _cache.move_to_end(key)
        return hit[1]
    renderer = make_renderer(tokenizer)
    _cache[key] = (tokenizer, renderer)
    if len(_cache) > 8:
        _cache.popitem(last=False)
    return renderer


def render(conversation: Conversation, tokenizer: Any, *, max_len: int | None = None) -> RenderedConversation:
    """Token ids and loss mask of ``conversation`` (first ``max_len`` tokens when given).

    ``tokenizer`` is a tokenizer (its renderer is chosen by ``make_renderer`` and reused) or a Renderer.
    """
    return _cached_renderer(tokenizer).render_batch([conversation])[0].truncate(max_len)
