"""Compare task conversations with nanochat's, pinned in tests/fixtures/<task>/reference.json."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any


def nanochat_view(conversation: dict[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The conversation restricted to the keys nanochat's task produces (all keys when None)."""
    return dict(conversation) if keys is None else {key: conversation[key] for key in keys}


def digest(conversations: Iterable[dict[str, Any]], keys: Sequence[str] | None = None) -> str:
    """sha256 over the canonical JSON of each conversation's nanochat view, one line each, in order."""
    sha = hashlib.sha256()
    for conversation in conversations:
        line = json.dumps(nanochat_view(conversation, keys), sort_keys=True, ensure_ascii=False)
        sha.update(line.encode() + b"\n")
    return sha.hexdigest()
