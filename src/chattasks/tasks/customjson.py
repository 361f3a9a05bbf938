"""CustomJSON: your own conversations, one JSON array of messages per line of a JSONL file.

Each non-blank line is a conversation of at least two messages alternating user, assistant,
user, ... (no system message), each an object with a string ``role`` and string ``content``::

    [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I'm nanochat."}]

becomes ``{"messages": [...that list...]}``. Every line is checked when the file is loaded;
all faults (up to ``max_errors``; None for all) are reported together as ``file:line: what is wrong``.
Only the file's bytes (memory-mapped) and two offset arrays are kept: a conversation is
parsed again when it is read, never held twice.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from chattasks.conversation import conversation_problems
from chattasks.errors import InvalidConversation
from chattasks.task import Conversation, Task

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def line_problems(line: bytes) -> list[str]:
    """Every fault of one JSONL line as a CustomJSON conversation (empty when valid)."""
    try:
        messages = json.loads(line.rstrip(b"\r\n"))
    except UnicodeDecodeError as exc:
        return [f"not valid UTF-8 ({exc.reason} at byte {exc.start})"]
    except json.JSONDecodeError as exc:
        return [f"invalid JSON: {exc.msg} (column {exc.colno})"]
    if not isinstance(messages, list):
        kind = _JSON_TYPES.get(type(messages), "null")
        return [f"expected a JSON array of messages, got a JSON {kind}"]
    return conversation_problems(messages, min_messages=2, allow_system=False, allow_parts=False)


class CustomJSON(Task):
    """Conversations from a JSONL file (training task; see the module docstring for the format)."""

    def __init__(self, filepath: str | os.PathLike[str], max_errors: int | None = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = str(filepath)
        path = Path(filepath)
        if not path.is_file():
            raise FileNotFoundError(f"CustomJSON: no such file: {path}")
        starts: list[int] = []
        ends: list[int] = []
        errors: list[str] = []
        error_count = 0
        offset = 0
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                begin, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                problems = line_problems(line)
                if problems:
                    error_count += 1
                    if max_errors is None or len(errors) < max_errors:
                        errors.append(f"{path}:{number}: {'; '.join(problems)}")
                    continue
                starts.append(begin)
                ends.append(offset)
        if errors:
            more = f" (and {error_count - len(errors)} more lines)" if error_count > len(errors) else ""
            raise InvalidConversation("\n".join(errors) + more, errors)
        self._starts = np.array(starts, dtype=np.int64)
        self._ends = np.array(ends, dtype=np.int64)
        self._bytes: mmap.mmap | bytes = b""
        if offset:
            with path.open("rb") as handle:
                self._bytes = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    @property
    def eval_type(self) -> str:
        """'generative': CustomJSON conversations are free text (used for training)."""
        return "generative"

    def num_examples(self) -> int:
        """The number of conversations (non-blank lines) in the file."""
        return len(self._starts)

    def get_example(self, index: int) -> Conversation:
        """The conversation on the ``index``-th non-blank line."""
        messages = json.loads(self._bytes[self._starts[index] : self._ends[index]])
        return {"messages": messages}
