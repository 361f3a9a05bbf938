"""The calculator offered as a chat tool: one sample's conversation, turn by turn.

For models that call tools through the chat format -- an OpenAI-compatible server's
``tools``/``tool_calls``, a chat template that takes ``tools=``, a Python function that takes
``tools=`` -- a backend drives a ``ToolConversation`` per sample:

1. ask the model for a turn on ``messages`` (the prompt, then the turns so far) with the
   calculator offered (``CALCULATOR_SCHEMA``);
2. ``add_turn(text, calls)``: the turn's calls are run by the AST calculator (a refusal is
   returned to the model as ``error: ...``, nothing is ever run) and appended, as the chat API
   has it, as an assistant message with ``tool_calls`` and one ``tool`` message per call;
3. repeat while ``add_turn`` says so: the model called a tool, the ``max_calls`` bound
   (``MAX_TOOL_CALLS`` by default) is not reached and token budget is left (``max_new_tokens``
   bounds the whole reply, every turn together, when the backend reports tokens).

A call beyond the bound is not run; the conversation ends there. ``completion()`` gives the
reply: the turns' texts joined by newlines (a server's separate reasoning folded into each, see
``reasoning.fold``), the calls with their positions in that text, the last turn's finish reason
and the tokens of all turns.

``parse_template_calls`` reads calls written as text by chat-template models (``<tool_call>``
JSON blocks as Hermes, Qwen and SmolLM write them, Mistral's ``[TOOL_CALLS]`` list, or a reply
that is a single ``{"name": ..., "arguments"|"parameters": ...}`` object, as Llama 3 writes it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chattasks.eval.backends.base import Completion, Messages
from chattasks.eval.reasoning import fold
from chattasks.tools.calls import ToolCall, call_named

MAX_TOOL_CALLS = 8
"""Tool calls one sample may make (chat tools); later calls are not run."""

_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_MISTRAL_CALLS = re.compile(r"\[TOOL_CALLS\]\s*(\[.*\])", re.DOTALL)


@dataclass(frozen=True)
class RequestedCall:
    """A call a model asked for: its id (made up when the model gave none), tool name and arguments
    (a JSON string or an object)."""

    id: str
    name: str
    arguments: Any


class ToolConversation:
    """One sample's chat with the calculator offered as a tool (see the module docstring)."""

    def __init__(
        self, prompt: Messages, *, max_calls: int = MAX_TOOL_CALLS, max_new_tokens: int | None = None
    ) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be >= 1, got {max_calls}")
        self.messages: list[dict[str, Any]] = [dict(m) for m in prompt]
        self.max_calls = max_calls
        self.max_new_tokens = max_new_tokens
        self.response = ""
        self.calls: list[ToolCall] = []
        self.finish_reason: str | None = None
        self.tokens: int | None = 0
        self.reasoning_tokens: int | None = None
        self.turns = 0

    @property
    def remaining_tokens(self) -> int | None:
        """Tokens left for the next turn (None: no bound known)."""
        if self.max_new_tokens is None or self.tokens is None:
            return self.max_new_tokens
        return max(self.max_new_tokens - self.tokens, 0)

    def add_turn(
        self,
        text: str | None,
        requested: Sequence[RequestedCall] = (),
        *,
        reasoning: str | None = None,
        finish_reason: str | None = None,
        tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> bool:
        """Record one assistant turn and run its calls; whether to ask the model for another turn."""
        text = text or ""
        self.turns += 1
        self.finish_reason = finish_reason
        self.tokens = None if self.tokens is None or tokens is None else self.tokens + tokens
        if reasoning_tokens is not None:
            self.reasoning_tokens = (self.reasoning_tokens or 0) + reasoning_tokens
        cut_off = finish_reason == "length" and not requested
        piece = fold(reasoning, text, cut_off=cut_off)
        if piece:
            self.response += ("\n" if self.response else "") + piece
        if not requested:
            return False
        room = self.max_calls - len(self.calls)
        run = list(requested[:room])
        position = len(self.response)
        results = [call_named(call.name, call.arguments, position) for call in run]
        self.calls.extend(results)
        self.messages.append(
            {
                "role": "assistant",
                "content": text,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": _json_text(call.arguments)},
                    }
                    for call in run
                ],
            }
        )
        for call, result in zip(run, results):
            content = result.result if result.result is not None else f"error: {result.error}"
            self.messages.append(
                {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}
            )
        more = len(requested) <= room and self.remaining_tokens != 0
        if not more and finish_reason != "length":
            self.finish_reason = "tool_calls" if len(requested) > room else "length"
        return more

    def template_messages(self) -> list[dict[str, Any]]:
        """``messages`` as chat templates take them: tool-call arguments as objects, not JSON text."""
        out = []
        for message in self.messages:
            if "tool_calls" not in message:
                out.append(message)
                continue
            calls = []
            for call in message["tool_calls"]:
                arguments = call["function"]["arguments"]
                try:
                    parsed = json.loads(arguments)
                except (TypeError, json.JSONDecodeError):
                    parsed = arguments
                calls.append({**call, "function": {"name": call["function"]["name"], "arguments": parsed}})
            out.append({**message, "tool_calls": calls})
        return out

    def completion(self) -> Completion:
        """The whole reply (see the module docstring)."""
        return Completion(
            self.response,
            finish_reason=self.finish_reason,
            tokens=self.tokens,
            reasoning_tokens=self.reasoning_tokens,
            tool_calls=tuple(self.calls),
            tools="calculator",
        )


def _json_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def openai_calls(message: Mapping[str, Any]) -> list[RequestedCall]:
    """The calls of a chat-completions ``message`` (its ``tool_calls``), malformed entries skipped."""
    calls = []
    for number, entry in enumerate(message.get("tool_calls") or []):
        if not isinstance(entry, Mapping):
            continue
        nested = entry.get("function")
        function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else entry
        name = function.get("name")
        if not isinstance(name, str):
            continue
        arguments = function.get("arguments", function.get("parameters", {}))
        calls.append(RequestedCall(str(entry.get("id") or f"call_{number}"), name, arguments))
    return calls


def parse_template_calls(text: str, turn: int = 0) -> tuple[str, list[RequestedCall]]:
    """(the text before the first call, the calls) of a reply a chat-template model wrote; a call
    that is not JSON naming a tool is kept with no name (the calculator answers it with an error)."""
    found: list[tuple[Any, str]] = []  # (parsed JSON or None, its text)
    head = text
    blocks = list(_TOOL_CALL_BLOCK.finditer(text))
    mistral = _MISTRAL_CALLS.search(text)
    if blocks:
        head = text[: blocks[0].start()]
        found = [(_json_or_none(block.group(1)), block.group(1)) for block in blocks]
    elif mistral is not None:
        head = text[: mistral.start()]
        found = [(_json_or_none(mistral.group(1)), mistral.group(1))]
    elif text.strip().startswith("{"):
        parsed = _json_or_none(text.strip())
        if isinstance(parsed, dict) and "name" in parsed:
            head, found = "", [(parsed, text.strip())]
    flat: list[tuple[Any, str]] = []
    for parsed, raw in found:
        if isinstance(parsed, list):
            flat.extend((item, json.dumps(item)) for item in parsed)
        else:
            flat.append((parsed, raw))
    calls = []
    for number, (item, raw) in enumerate(flat):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            arguments = item.get("arguments", item.get("parameters", {}))
            calls.append(RequestedCall(f"call_{turn}_{number}", name, arguments))
        else:
            calls.append(RequestedCall(f"call_{turn}_{number}", "", raw))
    return (head if calls else text), calls


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
