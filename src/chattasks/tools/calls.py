"""A tool call made while a model answered, as the journal keeps it, and the calculator's schema.

``ToolCall`` is one call: the tool (``calculator``), the expression, the result (the text given
back to the model) or the error (why the calculator refused: nothing was run), and where in the
reply it happened (``position``: characters of the journaled response before the call).
``call_calculator`` makes one; ``CALCULATOR_SCHEMA`` is how the calculator is offered to a chat
template (``tools=``) or an OpenAI-compatible server (``tools``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from chattasks.errors import ToolError
from chattasks.tools.calculator import calculate

TOOL_SETTINGS = ("auto", "calculator", "none")
"""``--tools``: ``auto`` (the tool the task's training data uses, when the model can call tools),
``calculator`` (offered on every generative task; a model that cannot call tools is an error)
or ``none``."""

CALCULATOR = "calculator"

CALCULATOR_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": CALCULATOR,
        "description": "Evaluate an arithmetic expression (+ - * / // % ** and parentheses) "
        "or count a character in a string literal, e.g. 'strawberry'.count('r').",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression, e.g. 12*3+4."}},
            "required": ["expression"],
        },
    },
}
"""The calculator as a chat-completions / chat-template tool."""


@dataclass(frozen=True)
class ToolCall:
    """One call of a tool during a reply (see the module docstring)."""

    expression: str
    result: str | None
    error: str | None
    position: int
    tool: str = CALCULATOR

    def to_json(self) -> dict[str, Any]:
        """The journal's form."""
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> ToolCall:
        """Rebuild from ``to_json``'s form."""
        return cls(
            expression=str(payload.get("expression", "")),
            result=None if payload.get("result") is None else str(payload["result"]),
            error=None if payload.get("error") is None else str(payload["error"]),
            position=int(payload.get("position", 0)),
            tool=str(payload.get("tool", CALCULATOR)),
        )


def format_result(value: int | float) -> str:
    """A calculator value as the model reads it (``str``, as nanochat's engine writes it)."""
    return str(value)


def call_calculator(expression: str, position: int) -> ToolCall:
    """Evaluate ``expression`` with the AST calculator; a refusal is an error, never a run."""
    try:
        return ToolCall(expression, format_result(calculate(expression)), None, position)
    except ToolError as exc:
        return ToolCall(expression, None, str(exc), position)


def call_named(name: str, arguments: Any, position: int) -> ToolCall:
    """A call requested by name with JSON ``arguments`` (a string or an object): the calculator's
    ``expression`` evaluated; any other tool or malformed arguments an error."""
    if not name:
        return ToolCall(str(arguments)[:200], None, "a malformed tool call (no tool name)", position, name)
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return ToolCall(arguments, None, f"arguments are not JSON: {arguments[:80]!r}", position, name)
    if name != CALCULATOR:
        return ToolCall(json.dumps(arguments)[:200], None, f"no tool named {name!r}", position, name)
    expression = arguments.get("expression") if isinstance(arguments, dict) else None
    if not isinstance(expression, str):
        return ToolCall(str(arguments)[:200], None, "expected arguments {'expression': '...'}", position)
    return call_calculator(expression, position)
