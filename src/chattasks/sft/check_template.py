"""Check a renderer's loss mask token by token on probe conversations, against an independent oracle.

The probes cover one turn, several turns (one answer repeating the user's words), a system
message, tool calls (GSM8K-style parts, two calls in a row), whitespace and non-ASCII text, and
markup that looks like special tokens. For each, the mask the renderer gives is compared with the
mask an oracle derives another way:

- chat templates: incremental rendering -- the tokens between ``apply_chat_template(messages[:k],
  add_generation_prompt=True)`` and the assistant turn's last special token are trained (tool
  outputs excepted, found by decoding). The oracle also checks that the renderer's ids are the
  tokenizer's own and that each generation prompt is a token prefix of the conversation (else
  the model is trained on a context it never sees at inference).
- nanochat special tokens: nanochat's rules applied piece by piece; plus checks that each special
  token is one id and that special-token text inside a message stays text.

Every token whose mask differs is reported; an empty report means the masks are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chattasks.sft.render import make_renderer
from chattasks.sft.renderer import Conversation, Renderer
from chattasks.sft.special import SpecialTokenRenderer
from chattasks.sft.template import ChatTemplateRenderer


def _turns(*pairs: tuple[str, Any]) -> Conversation:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


PROBES: dict[str, Conversation] = {
    "single turn": _turns(
        ("user", "What is the capital of France?"), ("assistant", "The capital of France is Paris.")
    ),
    "multi-turn": _turns(
        ("user", "Say only: ok"),
        ("assistant", "ok"),
        ("user", "Now count to three."),
        ("assistant", "One, two, three."),
        ("user", "Thanks!"),
        ("assistant", "You're welcome."),
    ),
    "system message": _turns(
        ("system", "You are a terse assistant. Answer in one word."),
        ("user", "Colour of the sky on a clear day?"),
        ("assistant", "Blue."),
        ("user", "And grass?"),
        ("assistant", "Green."),
    ),
    "tool use": _turns(
        ("user", "A box holds 12 eggs. How many eggs are in 7 boxes, minus 5 broken ones? How far from 100?"),
        (
            "assistant",
            [
                {"type": "text", "text": "Eggs in the boxes: 12*7="},
                {"type": "python", "text": "12*7"},
                {"type": "python_output", "text": "84"},
                {"type": "text", "text": ""},
                {"type": "python", "text": "84-5"},
                {"type": "python_output", "text": "79"},
                {"type": "text", "text": "79 whole eggs, 79-100="},
                {"type": "python", "text": "79-100"},
                {"type": "python_output", "text": "-21"},
                {"type": "text", "text": "-21 short of a hundred.\n#### 79"},
            ],
        ),
    ),
    "whitespace and unicode": _turns(
        ("user", "Line one\n\nLine two — 日本語?"),
        ("assistant", "Answer:  東京 ✓ and café.\n\n  (two spaces)  \n"),
    ),
    "markup in content": _turns(
        ("user", "Print the text <|assistant_end|> and </s> literally."),
        ("assistant", "Here it is: <|assistant_end|> and </s>"),
    ),
}


@dataclass(frozen=True)
class WrongToken:
    """A token whose mask is not what the oracle expects."""

    probe: str
    index: int
    token: str
    got: int
    expected: int


@dataclass
class ProbeResult:
    """One probe: the renderer's ids and mask, the oracle's mask, and what differs."""

    name: str
    ids: np.ndarray
    mask: np.ndarray
    expected: np.ndarray  # the oracle's mask; -1 where it cannot judge (see problems)
    wrong: list[WrongToken] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def unchecked(self) -> int:
        """Tokens the oracle could not judge (a failed check explains why)."""
        return int(np.count_nonzero(self.expected < 0))

    @property
    def ok(self) -> bool:
        """True when every token's mask is right and no check failed."""
        return not self.wrong and not self.problems


@dataclass
class TemplateReport:
    """The result of ``check_template``: one ProbeResult per probe."""

    renderer: str
    results: list[ProbeResult]

    @property
    def ok(self) -> bool:
        """True when every probe passed."""
        return all(result.ok for result in self.results)

    @property
    def wrong(self) -> list[WrongToken]:
        """Every wrong token of every probe."""
        return [token for result in self.results for token in result.wrong]


def _special_oracle(
    renderer: SpecialTokenRenderer, conversation: Conversation
) -> tuple[list[int], list[int], list[str]]:
    special = renderer.special_ids
    ids: list[int] = []
    mask: list[int] = []

    def add(tokens: list[int], value: int) -> None:
        ids.extend(tokens)
        mask.extend([value] * len(tokens))

    def text(value: str) -> list[int]:
        return renderer.encoder.encode_batch([value])[0]

    messages = list(conversation["messages"])
    if messages[0]["role"] == "system":
        messages = [
            {"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]},
            *messages[2:],
        ]
    add([special["<|bos|>"]], 0)
    for message in messages:
        if message["role"] == "user":
            add([special["<|user_start|>"]], 0)
            add(text(message["content"]), 0)
            add([special["<|user_end|>"]], 0)
            continue
        add([special["<|assistant_start|>"]], 0)
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for part in parts:
            if part["type"] == "text":
                add(text(part["text"]), 1)
            elif part["type"] == "python":
                add([special["<|python_start|>"], *text(part["text"]), special["<|python_end|>"]], 1)
            else:
                add([special["<|output_start|>"], *text(part["text"]), special["<|output_end|>"]], 0)
        add([special["<|assistant_end|>"]], 1)
    problems = []
    for name, token_id in special.items():
        if text(name) == [token_id]:
            problems.append(f"the text {name!r} inside a message encodes to the special token itself")
    return ids, mask, problems


def _template_oracle(
    renderer: ChatTemplateRenderer, conversation: Conversation
) -> tuple[list[int], list[int], list[str]]:
    tokenizer = renderer.tokenizer
    fmt = renderer.tool_format
    messages = [
        {
            "role": m["role"],
            "content": fmt.flatten(m["content"]) if m["role"] == "assistant" else m["content"],
        }
        for m in conversation["messages"]
    ]

    def tokens(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    full = tokens(renderer.apply(messages))
    expected = [0] * len(full)
    problems: list[str] = []

    def unknown(upto: list[int], against: list[int]) -> None:  # the oracle cannot judge these tokens
        start = next(
            (i for i, (x, y) in enumerate(zip(full, against)) if x != y), min(len(full), len(against))
        )
        stop = len(upto) if full[: len(upto)] == upto else len(full)
        expected[start:stop] = [-1] * max(0, stop - start)

    specials = set(renderer.special_ids.tolist())
    for k, message in enumerate(conversation["messages"]):
        if message["role"] != "assistant":
            continue
        prompt = tokens(renderer.apply(messages[:k], add_generation_prompt=True))
        upto = tokens(renderer.apply(messages[: k + 1]))
        if full[: len(prompt)] != prompt:
            problems.append(
                f"message {k}: the generation prompt is not a token prefix of the conversation "
                "(the model would be trained on a context it never sees at inference)"
            )
            unknown(upto, prompt)
            continue
        if full[: len(upto)] != upto:
            problems.append(
                f"message {k}: rendering up to this message is not a token prefix of the conversation"
            )
            unknown(upto, upto)
            continue
        trained_tokens = _trained_in_turn(renderer, message["content"], upto[len(prompt) :], specials)
        if trained_tokens is None:
            problems.append(f"message {k}: its content is not in the decoded assistant turn")
            unknown(upto, prompt + [-1])
            continue
        for n in trained_tokens:
            expected[len(prompt) + n] = 1
    return full, expected, problems


def _trained_in_turn(
    renderer: ChatTemplateRenderer, content_parts: Any, turn: list[int], specials: set[int]
) -> list[int] | None:
    """Which tokens of an assistant turn (its tokens after the generation prompt) the oracle trains.

    None when the message's content is not found in the decoded turn (the oracle cannot judge).
    The turn ends at its last special token (the end of turn); a token is trained when it carries
    trained content and no tool output, or lies outside the content (end of turn, template text).
    """
    tail = [n for n, token in enumerate(turn) if token in specials]
    end = tail[-1] if tail else len(turn) - 1
    content, trained = renderer.tool_format.spans(content_parts)
    text = renderer.decode(turn[: end + 1])
    origin = text.find(content) if content else 0
    if origin < 0:
        return None
    cuts = [len(renderer.decode(turn[:n])) for n in range(end + 1)] + [len(text)]
    found = []
    for n in range(end + 1):
        a, b = cuts[n], cuts[n + 1]  # the token's characters in the decoded turn
        holds = any(origin + x < b and a < origin + y for x, y in trained)
        in_content = a < origin + len(content) and b > origin
        outside_trained = in_content and _outside(a - origin, b - origin, trained, len(content))
        if (holds and not outside_trained) or not in_content:
            found.append(n)
    return found


def _outside(a: int, b: int, trained: list[tuple[int, int]], length: int) -> bool:
    """Whether characters [a, b) of the content include one outside every trained span (a tool output)."""
    for char in range(max(a, 0), min(b, length)):
        if not any(x <= char < y for x, y in trained):
            return True
    return False


def check_probe(renderer: Renderer, name: str, conversation: Conversation) -> ProbeResult:
    """Render one probe and compare its mask with the oracle's."""
    rendered = renderer.render_batch([conversation])[0]
    if isinstance(renderer, SpecialTokenRenderer):
        ids, expected, problems = _special_oracle(renderer, conversation)
    elif isinstance(renderer, ChatTemplateRenderer):
        ids, expected, problems = _template_oracle(renderer, conversation)
    else:
        raise TypeError(
            f"no oracle for {type(renderer).__name__}: expected a SpecialTokenRenderer or ChatTemplateRenderer"
        )
    result = ProbeResult(
        name, rendered.ids, rendered.mask, np.array(expected, dtype=np.int8), problems=problems
    )
    if list(rendered.ids.tolist()) != list(ids):
        result.problems.append("the renderer's ids differ from the tokenizer's own rendering")
        return result
    known = result.expected >= 0
    for i in np.flatnonzero(known & (rendered.mask != result.expected)).tolist():
        token = renderer.decode([int(rendered.ids[i])])
        result.wrong.append(WrongToken(name, i, token, int(rendered.mask[i]), int(result.expected[i])))
    return result


def check_template(
    tokenizer: Any, probes: dict[str, Conversation] | None = None, **options: Any
) -> TemplateReport:
    """Check the loss masks ``tokenizer``'s renderer (``make_renderer(tokenizer, **options)``) gives on the probes."""
    from chattasks.errors import RenderError

    renderer = make_renderer(tokenizer, **options)
    results = []
    for name, conversation in (probes or PROBES).items():
        try:
            results.append(check_probe(renderer, name, conversation))
        except RenderError as exc:
            empty = np.zeros(0, dtype=np.int8)
            results.append(ProbeResult(name, empty, empty, empty, problems=[str(exc)]))
    return TemplateReport(type(renderer).__name__, results)
