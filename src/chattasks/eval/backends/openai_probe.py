"""What an OpenAI-compatible server can do, asked once per backend with tiny requests.

Servers differ in what they accept beyond the basics: vLLM and SGLang return ``logprobs`` and
echo prompts with their log-probabilities; ``transformers serve`` accepts those fields and
ignores them; hosted APIs refuse ``echo``; llama.cpp caps ``top_logprobs``. Rather than finding
out from the answers to real questions (and racing, with many requests in flight), the backend
asks once, before the first request that needs it:

- ``probe_chat``: ``chat/completions``, one token, with ``logprobs`` and ``top_logprobs``. The
  endpoint answers (else its error is raised: wrong model, key or URL), and log-probabilities
  come back (``returned``), are left out (``ignored``) or make the server refuse the request
  (``refused``, HTTP 400/422: asked again without them).
- ``probe_n``: several choices per request (``n=2``): honoured, ignored or refused.
- ``probe_echo``: ``completions`` with ``echo=true, logprobs=1`` on two prompts at once: prompt
  log-probabilities come back or not; a list of prompts is accepted or each prompt goes alone;
  ``max_tokens=0`` is accepted (one attempt; any failure means no, and one token is generated
  and dropped instead).

``Capabilities`` holds the answers (None: not asked, because nothing needed it) and goes into
results.json with the backend's description.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from chattasks.errors import BackendError, Rejected
from chattasks.eval.backends.openai_wire import parse_chat_choices, parse_choices

if TYPE_CHECKING:  # the transport imports httpx and asyncio, which the CLI need not load for --help
    from chattasks.eval.backends.openai_transport import Transport

CHAT = "/chat/completions"
COMPLETIONS = "/completions"
PROBE_QUESTION = "Answer with one letter. Is water wet? A. yes B. no"
PROBE_TEXTS = ("The sky is", "Water is")
REFUSED_FIELD = (400, 422)  # how servers refuse a field they do not take
UNSUPPORTED = (400, 404, 405, 422, 501)  # "this server cannot do what was asked"


@dataclass
class Capabilities:
    """What the server accepts, each probed once when first needed (None: not probed)."""

    chat: bool | None = None  # chat/completions answers
    logprobs: str | None = None  # chat log-probabilities: "returned", "ignored" or "refused"
    top_logprobs: int | None = None  # alternatives per position the server returned (when returned)
    n: str | None = None  # several choices per request: "honoured", "ignored" or "refused"
    echo: str | None = None  # completions prompt log-probabilities: "returned", "ignored" or "refused"
    echo_detail: str | None = None  # why not, in the server's words
    prompt_lists: bool | None = None  # completions takes a list of prompts in one request
    max_tokens_zero: bool | None = None  # completions accepts max_tokens=0 with echo

    def to_dict(self) -> dict[str, Any]:
        """The answers as a JSON-ready dict (for results.json)."""
        return asdict(self)


def first_position(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The first generated position's candidate tokens (the sampled one first), or None without logprobs."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    top = first.get("top_logprobs")
    candidates = [entry for entry in top if isinstance(entry, dict)] if isinstance(top, list) else []
    return [first, *candidates]


def echoes(prompt: str, choice: dict[str, Any]) -> bool:
    """Whether a completions choice echoes ``prompt`` with a log-probability list for its tokens."""
    logprobs = choice.get("logprobs")
    values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    return str(choice.get("text", "")).startswith(prompt) and isinstance(values, list) and len(values) > 0


async def probe_chat(transport: Transport, model: str, top_logprobs: int, found: Capabilities) -> None:
    """Fill ``found.chat``, ``found.logprobs`` and ``found.top_logprobs``; raise what a plain request meets."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_QUESTION}],
        "max_tokens": 1,
        "temperature": 0,
    }
    asking = {**body, "logprobs": True, "top_logprobs": top_logprobs}
    try:
        choices = await transport.post(CHAT, asking, parse_chat_choices)
    except Rejected as exc:
        if exc.status not in REFUSED_FIELD:
            raise
        await transport.post(CHAT, body, parse_chat_choices)  # a request the server refuses anyway raises
        found.chat, found.logprobs = True, "refused"
        return
    candidates = first_position(choices[0])
    found.chat = True
    found.logprobs = "ignored" if candidates is None else "returned"
    found.top_logprobs = None if candidates is None else len(candidates) - 1


async def probe_n(transport: Transport, model: str, found: Capabilities) -> None:
    """Fill ``found.n``: whether one request gives several choices."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_QUESTION}],
        "max_tokens": 1,
        "temperature": 1.0,
        "seed": 0,
        "n": 2,
    }
    try:
        choices = await transport.post(CHAT, body, parse_chat_choices)
    except Rejected as exc:
        if exc.status not in REFUSED_FIELD:
            raise
        found.n = "refused"
        return
    found.n = "honoured" if len(choices) >= 2 else "ignored"


async def probe_echo(transport: Transport, model: str, found: Capabilities) -> None:
    """Fill ``found.echo`` (and ``echo_detail``, ``prompt_lists``, ``max_tokens_zero`` when it echoes)."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(PROBE_TEXTS),
        "max_tokens": 1,
        "echo": True,
        "logprobs": 1,
        "temperature": 0,
    }
    texts: tuple[str, ...] = PROBE_TEXTS
    try:
        choices = await transport.post(COMPLETIONS, body, parse_choices)
    except Rejected as exc:
        if exc.status not in UNSUPPORTED:
            raise
        texts = PROBE_TEXTS[:1]
        try:
            choices = await transport.post(COMPLETIONS, {**body, "prompt": texts[0]}, parse_choices)
        except Rejected as alone:
            if alone.status not in UNSUPPORTED:
                raise
            found.echo, found.echo_detail = "refused", str(alone)
            return
    if len(choices) != len(texts) or not all(echoes(t, c) for t, c in zip(texts, choices)):
        found.echo = "ignored"
        found.echo_detail = (
            "the server did not echo the prompt with log-probabilities (echo=true, logprobs=1)"
        )
        return
    found.echo, found.prompt_lists = "returned", len(texts) > 1
    try:
        zero = await transport.post(
            COMPLETIONS, {**body, "prompt": texts[0], "max_tokens": 0}, parse_choices, once=True
        )
    except BackendError:  # Rejected, or an error (transformers serve answers 500)
        found.max_tokens_zero = False
        return
    found.max_tokens_zero = echoes(texts[0], zero[0]) and zero[0].get("text") == texts[0]
