"""What travels over the wire to an OpenAI-compatible server: base URLs, replies, error messages.

Pure functions, no I/O: a base URL normalised the OpenAI client's way (``http://host:8000`` gets
``/v1``), the ``choices`` of a reply checked (a reply without them is ``MalformedReply`` and retried),
the server's own message read out of an error body, and ``Retry-After`` read as seconds.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chattasks.errors import MalformedReply

if TYPE_CHECKING:  # only named in annotations
    import httpx

MAX_RETRY_AFTER = 120.0  # seconds: the longest Retry-After honoured


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, whitespace runs made single spaces, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def normalise_url(url: str) -> str:
    """A base URL without a trailing slash, ``/v1`` added when it has no path; ValueError if it is no URL."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"base URL must be a non-empty string like http://localhost:8000/v1, got {url!r}")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must start with http:// or https:// and name a host, got {url!r}")
    return url if parts.path else url + "/v1"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def server_message(response: httpx.Response) -> str:
    """The server's own explanation of an error reply (OpenAI's ``error.message``, FastAPI's ``detail``, ...)."""
    try:
        data = response.json()
    except ValueError:
        return one_line(response.text) or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if error.get(key):
                    return one_line(str(error[key]))
        elif isinstance(error, str) and error:
            return one_line(error)
        if data.get("detail"):
            return one_line(str(data["detail"]))
    return one_line(response.text)


def parse_choices(data: Any) -> list[dict[str, Any]]:
    """The ``choices`` of a completions reply in ``index`` order; a reply without them is retried."""
    if not isinstance(data, dict):
        raise MalformedReply(f"expected a JSON object, got {type(data).__name__}")
    found = data.get("choices")
    if not isinstance(found, list) or not found or not all(isinstance(c, dict) for c in found):
        raise MalformedReply("no 'choices' list in the response")
    return sorted(found, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def parse_chat_choices(data: Any) -> list[dict[str, Any]]:
    """The ``choices`` of a chat completions reply, each with a ``message``; a reply without them is retried."""
    found = parse_choices(data)
    if not all(isinstance(c.get("message"), dict) for c in found):
        raise MalformedReply("a choice has no 'message'")
    return found
