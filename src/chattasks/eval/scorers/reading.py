"""How a generated reply is read before grading: reasoning apart, truncation, tool calls.

``read_reply`` turns a backend's reply (a string or a ``Completion``) into a ``Reading``: the
response as journaled (a server's separate reasoning folded in, see ``reasoning.fold``), the
answer extraction reads (the response outside its reasoning blocks), the reasoning, and what the
backend said of the reply (finish reason, tokens, tool calls, the tool offered).
``read_record`` reads a journaled record again the same way (``chattasks regrade``).

A reply is ``truncated_in_reasoning`` when it ends inside a reasoning block and the token limit
was hit: the backend said ``finish_reason == "length"``, or its token count reached
``max_new_tokens``. A reply that ends inside a block without the limit known to be hit (a
backend that returns plain strings, a run made before finish reasons were journaled) has no
answer: it is the ordinary ``no_answer`` failure, its content kept as reasoning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chattasks.eval.backends.base import Backend, Completion
from chattasks.eval.reasoning import DEFAULT_TAGS, TagPair, fold, resolve_tags, split_reasoning
from chattasks.eval.record import SampleRecord


@dataclass(frozen=True)
class Reading:
    """A reply as grading reads it (see the module docstring)."""

    response: str
    answer: str
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    tokens: int | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tools: str | None = None
    truncated_in_reasoning: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    """What the record's details keep of the reading: the tool offered, the tags when not the run's."""

    def record_fields(self) -> dict[str, Any]:
        """The record fields this reading fills (``answer`` only when reasoning was split off)."""
        return {
            "answer": self.answer if self.reasoning is not None else None,
            "reasoning": self.reasoning,
            "reasoning_tokens": self.reasoning_tokens,
            "finish_reason": self.finish_reason,
            "tokens": self.tokens,
            "tool_calls": list(self.tool_calls),
        }


def _read(
    response: str,
    tags: Sequence[TagPair],
    max_new_tokens: int | None,
    *,
    finish_reason: str | None,
    tokens: int | None,
    reasoning_tokens: int | None,
    tool_calls: list[dict[str, Any]],
    tools: str | None,
    details: dict[str, Any],
) -> Reading:
    split = split_reasoning(response, tags)
    # the finish reason decides when the backend gave one; else a token count at the limit does
    hit_limit = finish_reason == "length" or (
        finish_reason is None
        and tokens is not None
        and max_new_tokens is not None
        and tokens >= max_new_tokens
    )
    return Reading(
        response=response,
        answer=split.answer,
        reasoning=split.reasoning,
        reasoning_tokens=reasoning_tokens if split.reasoning is not None else None,
        finish_reason=finish_reason,
        tokens=tokens,
        tool_calls=tool_calls,
        tools=tools,
        truncated_in_reasoning=not split.closed and hit_limit,
        details={**({"tools": tools} if tools else {}), **details},
    )


def read_reply(
    reply: str | Completion,
    tags: Sequence[TagPair],
    max_new_tokens: int | None,
    given: Sequence[TagPair] | None = None,
) -> Reading:
    """A backend's reply as grading reads it, split by ``tags`` (the run asked for ``given``)."""
    completion = Completion.of(reply)
    cut_off = completion.finish_reason == "length"
    response = fold(completion.reasoning, completion.text, cut_off=cut_off, tags=tags or DEFAULT_TAGS)
    return _read(
        response,
        tags,
        max_new_tokens,
        finish_reason=completion.finish_reason,
        tokens=completion.tokens,
        reasoning_tokens=completion.reasoning_tokens,
        tool_calls=[call.to_json() for call in completion.tool_calls],
        tools=completion.tools,
        details=tag_details(tags, given),
    )


def read_record(record: SampleRecord, given: Sequence[TagPair] | None, max_new_tokens: int | None) -> Reading:
    """A journaled record's reply read again (a record of any chattasks version), with the tags it
    was read with (the run's ``given`` ones, or those its details kept)."""
    kept = record.details.get("reasoning_tags")
    tags = (
        tuple((str(o), str(c)) for o, c in kept) if isinstance(kept, list) and kept else resolve_tags(given)
    )
    return _read(
        record.response,
        tags,
        max_new_tokens,
        finish_reason=record.finish_reason,
        tokens=record.tokens,
        reasoning_tokens=record.reasoning_tokens,
        tool_calls=list(record.tool_calls),
        tools=record.details.get("tools"),
        details=tag_details(tags, given),
    )


def run_tags(given: Sequence[TagPair] | None, backend: Backend | None) -> tuple[TagPair, ...]:
    """The pairs a run splits by: ``given`` (None: the default) and those of the backend's chat
    template, when it has one (a transformers tokenizer's ``chat_template``)."""
    tokenizer = getattr(backend, "tokenizer", None)
    template = getattr(tokenizer, "chat_template", None)
    return resolve_tags(given, template if isinstance(template, str) else None)


def tag_details(tags: Sequence[TagPair], given: Sequence[TagPair] | None) -> dict[str, Any]:
    """What a record keeps of its tags: nothing when they are the run's own, else the pairs
    (a template added some), so that re-grading reads it the same way."""
    return {} if tuple(tags) == resolve_tags(given) else {"reasoning_tags": [list(pair) for pair in tags]}
