"""Reasoning apart from the answer: what a model thought is never graded as what it answered.

A reply is split by tag pairs (``<think>…</think>`` by default) into its reasoning and its answer:

- Text inside a block is reasoning; everything outside every block, stripped, is the answer.
  Several blocks are joined (by a blank line) into one reasoning; a block nested in a block of the
  same pair stays inside it (``<think>a<think>b</think>c</think>d`` thinks ``a<think>b</think>c``
  and answers ``d``); a tag of another pair inside a block is text.
- A close tag that comes before any open tag means the block was opened in the prompt (templates
  such as Qwen3's end the generation prompt with ``<think>``): the text before it is reasoning.
  A later close tag with no block open is dropped from the answer.
- A block still open at the end of the reply (an unclosed tag) holds the rest of the reply: its
  content is reasoning, and ``closed`` is False.

Which pairs: ``tags`` given by the run (``--reasoning-tags "<reasoning>,</reasoning>"``), else
``DEFAULT_TAGS``; plus the pairs a model's chat template names
(``tags_in_template``: ``<think>``/``</think>``-style tags whose name holds ``think``, ``thought``
or ``reason``, ``<|begin_of_thought|>``/``<|end_of_thought|>`` and ``[THINK]``/``[/THINK]``).

A server that returns reasoning apart (``reasoning_content``) gets it back in front of the
reply inside the first pair (``fold``): the journaled response then holds the whole reply, and
this split reads it the same way as a reply that wrote its tags itself. A server reply cut off
before any content is folded with its block left open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

TagPair = tuple[str, str]
"""An (open, close) tag pair."""

DEFAULT_TAGS: tuple[TagPair, ...] = (("<think>", "</think>"),)
"""The pair every reply is split by unless the run names others."""

_NAMED = re.compile(r"<(/?)([A-Za-z_:.-]*(?:think|thought|reason)[A-Za-z_:.-]*)>", re.IGNORECASE)
_BEGIN_END = re.compile(r"<\|(begin|end)_of_([a-z_]*(?:think|thought|reason)[a-z_]*)\|>", re.IGNORECASE)
_BRACKETED = re.compile(r"\[(/?)(THINK|THINKING|REASONING)\]")


@dataclass(frozen=True)
class Split:
    """A reply split into reasoning and answer (see the module docstring)."""

    reasoning: str | None
    """The reasoning (blocks joined by a blank line); None when the reply has no block."""
    answer: str
    """The text outside every block, stripped: what extraction reads."""
    closed: bool
    """False when the reply ends inside a block (an unclosed tag)."""


def split_reasoning(text: str, tags: Sequence[TagPair] = DEFAULT_TAGS) -> Split:
    """``text`` split into its reasoning and its answer by the ``tags`` pairs."""
    pairs = [(o, c) for o, c in tags if o and c]
    if not pairs or not isinstance(text, str):
        return Split(None, text.strip() if isinstance(text, str) else "", True)
    closers = {c for _, c in pairs}
    openers = {o: c for o, c in pairs}
    pattern = re.compile("|".join(re.escape(t) for t in sorted({*openers, *closers}, key=len, reverse=True)))
    answer: list[str] = []
    blocks: list[str] = []
    position = start = depth = 0
    close = ""
    seen_tag = False
    for match in pattern.finditer(text):
        tag = match.group()
        if depth == 0:
            before = text[position : match.start()]
            if tag in openers:
                answer.append(before)
                depth, close, start = 1, openers[tag], match.end()
            else:  # a close tag with no block open: the prompt opened one (the first tag), else dropped
                (answer if seen_tag else blocks).append(before)
                position = match.end()
        elif tag == close:
            depth -= 1
            if depth == 0:
                blocks.append(text[start : match.start()])
                position = match.end()
        elif openers.get(tag) == close:
            depth += 1
        seen_tag = True
    if depth:
        blocks.append(text[start:])
    else:
        answer.append(text[position:])
    if not seen_tag:
        return Split(None, text.strip(), True)
    reasoning = "\n\n".join(block.strip() for block in blocks if block.strip())
    return Split(reasoning, "".join(answer).strip(), depth == 0)


def fold(
    reasoning: str | None, text: str, *, cut_off: bool = False, tags: Sequence[TagPair] = DEFAULT_TAGS
) -> str:
    """A server's separate ``reasoning`` put back in front of ``text`` inside the first pair of
    ``tags``; the block is left open when the reply was ``cut_off`` before any text."""
    if not reasoning:
        return text
    opening, closing = (tags or DEFAULT_TAGS)[0]
    if cut_off and not text.strip():
        return f"{opening}{reasoning}"
    return f"{opening}{reasoning}{closing}{text}"


def tags_in_template(template: str | None) -> tuple[TagPair, ...]:
    """The reasoning tag pairs a chat template names (both tags of a pair must appear), in order."""
    if not template:
        return ()
    found: list[TagPair] = []
    for match in _NAMED.finditer(template):
        if not match.group(1):
            pair = (match.group(), f"</{match.group(2)}>")
            if pair[1] in template and pair not in found:
                found.append(pair)
    for match in _BEGIN_END.finditer(template):
        if match.group(1).lower() == "begin":
            pair = (match.group(), match.group().replace("begin_of_", "end_of_"))
            if pair[1] in template and pair not in found:
                found.append(pair)
    for match in _BRACKETED.finditer(template):
        if not match.group(1):
            pair = (match.group(), f"[/{match.group(2)}]")
            if pair[1] in template and pair not in found:
                found.append(pair)
    return tuple(found)


def resolve_tags(given: Sequence[TagPair] | None, template: str | None = None) -> tuple[TagPair, ...]:
    """The pairs a run splits by: ``given`` (None: ``DEFAULT_TAGS``) and the template's own."""
    pairs: list[TagPair] = [tuple(p) for p in (DEFAULT_TAGS if given is None else given)]  # type: ignore[misc]
    for pair in tags_in_template(template):
        if pair not in pairs:
            pairs.append(pair)
    return tuple(pairs)


def parse_tags(value: str) -> tuple[TagPair, ...]:
    """``--reasoning-tags``: ``OPEN,CLOSE`` pairs separated by ``;``; ValueError naming the value
    otherwise."""
    pairs = []
    for item in value.split(";"):
        parts = [part.strip() for part in item.split(",")]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise ValueError(
                f"--reasoning-tags {value!r}: expected OPEN,CLOSE pairs separated by ';' "
                "(e.g. '<think>,</think>;<reasoning>,</reasoning>')"
            )
        pairs.append((parts[0], parts[1]))
    return tuple(pairs)


def normalize_tags(tags: Iterable[Sequence[str]] | None) -> tuple[TagPair, ...] | None:
    """Tag pairs as tuples (JSON gives lists back); ValueError for anything but a non-empty list of
    string pairs (a run always splits by some pair)."""
    if tags is None:
        return None
    pairs = []
    for pair in tags:
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(t, str) and t for t in pair):
            raise ValueError(f"reasoning_tags: expected (open, close) string pairs, got {pair!r}")
        pairs.append((pair[0], pair[1]))
    if not pairs:
        raise ValueError("reasoning_tags: give at least one (open, close) pair, or None for the default")
    return tuple(pairs)


def reasoning_token_count(
    tokens: Sequence[int], decode: Callable[[Sequence[int]], str], tags: Sequence[TagPair]
) -> int | None:
    """How many of a reply's ``tokens`` are reasoning: those up to the end of its last closed
    block (all of them when a block is left open); None when the reply has no block."""
    whole = split_reasoning(decode(tokens), tags)
    if whole.reasoning is None:
        return None
    if not whole.closed:
        return len(tokens)
    target = _answer_start(decode(tokens), tags)
    low, high = 0, len(tokens)
    while low < high:  # the shortest prefix whose text reaches the end of the last block
        middle = (low + high) // 2
        if len(decode(tokens[:middle])) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def _answer_start(text: str, tags: Sequence[TagPair]) -> int:
    """The character offset just after the last close tag of ``text``."""
    ends = [text.rfind(close) + len(close) for _, close in tags if close in text]
    return max(ends) if ends else 0
