"""The conversation schema, and the one validator every task and loader uses.

A conversation is ``{"messages": [...], **task_specific_keys}``. ``messages`` is a list where

- an optional ``system`` message comes first, and only first;
- then ``user`` and ``assistant`` messages alternate, starting with ``user``;
- user and system ``content`` is a string;
- assistant ``content`` is a string, or a list of parts ``{"type": t, "text": str}`` with
  ``t`` one of ``text``, ``python`` (a tool call) or ``python_output`` (the tool's answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chattasks.errors import InvalidConversation

ROLES = ("system", "user", "assistant")
PART_TYPES = ("text", "python", "python_output")


def conversation_problems(
    messages: Any, *, min_messages: int = 1, allow_system: bool = True, allow_parts: bool = True
) -> list[str]:
    """Return every way ``messages`` breaks the schema, as short sentences (empty when valid)."""
    if not isinstance(messages, list):
        return [f"expected a list of messages, got {type(messages).__name__}"]
    problems: list[str] = []
    if len(messages) < min_messages:
        problems.append(f"expected at least {min_messages} messages, got {len(messages)}")
    offset = (
        1
        if allow_system and messages and isinstance(messages[0], dict) and messages[0].get("role") == "system"
        else 0
    )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(
                f"message {i}: expected an object with role and content, got {type(message).__name__}"
            )
            continue
        missing = [key for key in ("role", "content") if key not in message]
        if missing:
            problems.append(f"message {i}: missing field {' and '.join(repr(k) for k in missing)}")
            continue
        role, content = message["role"], message["content"]
        if i < offset:
            expected = "system"
        else:
            expected = "user" if (i - offset) % 2 == 0 else "assistant"
        if role not in ROLES:
            problems.append(f"message {i}: role {role!r} is not one of {', '.join(ROLES)}")
        elif role == "system" and role != expected:
            rule = "comes only first" if allow_system else "is not allowed in this format"
            problems.append(f"message {i}: role 'system': a system message {rule}")
        elif role != expected:
            problems.append(
                f"message {i}: role {role!r}: expected {expected!r} (roles alternate user, assistant)"
            )
        if role == "assistant" and allow_parts and isinstance(content, list):
            problems.extend(_part_problems(i, content))
        elif not isinstance(content, str):
            kind = "a string or a list of parts" if role == "assistant" and allow_parts else "a string"
            problems.append(f"message {i}: content must be {kind}, got {type(content).__name__}")
    return problems


def _part_problems(i: int, parts: Sequence[Any]) -> list[str]:
    problems = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            problems.append(f"message {i} part {j}: expected an object with type and text")
        elif part.get("type") not in PART_TYPES:
            problems.append(
                f"message {i} part {j}: type {part.get('type')!r} is not one of {', '.join(PART_TYPES)}"
            )
        elif not isinstance(part.get("text"), str):
            problems.append(f"message {i} part {j}: text must be a string")
    return problems


def validate_messages(messages: Any, *, source: str = "conversation", **rules: Any) -> None:
    """Raise InvalidConversation naming ``source`` and every fault when ``messages`` breaks the schema."""
    problems = conversation_problems(messages, **rules)
    if problems:
        raise InvalidConversation(f"{source}: {'; '.join(problems)}", problems)


def validate_conversation(conversation: Any, *, source: str = "conversation") -> None:
    """Raise InvalidConversation when ``conversation`` is not ``{"messages": [...valid...], ...}``."""
    if not isinstance(conversation, dict) or "messages" not in conversation:
        raise InvalidConversation(f"{source}: expected a dict with a 'messages' list")
    validate_messages(conversation["messages"], source=source)


def assistant_text(content: str | list[dict[str, str]]) -> str:
    """The text of an assistant message: the string itself, or its parts' texts joined."""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content)
