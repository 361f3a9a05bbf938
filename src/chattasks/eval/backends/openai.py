"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

How requests reach the server -- the loop thread, base URLs and ``$OPENAI_BASE_URL``, spreading over
several URLs, retries, ``Retry-After`` and which errors are retried -- is ``openai_transport``; this
module decides what to ask and reads the answers.

How each kind of question is asked:

- ``letter_scores``: ``chat/completions`` with ``max_tokens=1``, ``temperature=0``,
  ``logprobs=true`` and ``top_logprobs=N``. A letter's score is the best log-probability among
  the first position's top tokens that equal the letter once surrounding whitespace is stripped
  (``"A"`` and ``" A"`` both count); letters not among them get ``-inf``; when none of the letters
  is among them the scores are empty (so ``best()`` is None: an extraction failure, never a
  silent first letter). A server that gives no log-probabilities (or rejects the request for
  them) is asked for the 1-token reply instead: the stripped reply scores 0 if it is a letter,
  and the method becomes ``"completion"``. What the server can do is remembered per backend.
- ``generate``: ``chat/completions`` with ``temperature``, ``max_tokens``, ``seed``, ``n`` and,
  when sampling with top-k, ``top_k`` as an extra field (vLLM, SGLang and llama.cpp take it; a
  server that rejects it gets a clear error rather than silently different decoding). A server
  that ignores or rejects ``n`` is asked once per missing sample, with seeds ``seed + 1``, ...
  Each reply is a ``Completion``: the content, the server's separate reasoning
  (``reasoning_content``, or ``reasoning``), the finish reason and, for one sample a request, the
  token counts of ``usage``.
- ``generate`` with ``config.tools == "calculator"``: each sample is a tool conversation
  (``openai_tools.tool_sample``). Under ``auto`` no tools are offered: whether a served model
  calls tools cannot be told without asking it.
- ``loglikelihoods``: ``completions`` with ``echo=true``, ``logprobs=1`` and ``max_tokens=0``
  (``1`` where the server insists on generating; the generated token is dropped, as lm-eval
  does), one request per context holding the context alone and context + each continuation.
  The continuation's tokens are those of the whole text past the context's own token count,
  which is lm-eval's rule (trailing whitespace of the context moves to the continuation). A
  server without prompt log-probabilities raises ``NotSupported``, once and then at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends.base import BackendOption, Completion, GenerationConfig, LetterScores, Messages
from chattasks.eval.backends.openai_tools import completion_of, parse_chat_with_usage, tool_sample
from chattasks.eval.backends.openai_transport import (
    Rejected,
    Transport,
    gather,
    parse_chat_choices,
    parse_choices,
)

# re-exported: callers and tests import it from here
from chattasks.eval.backends.openai_transport import retry_after_seconds as retry_after_seconds

CHAT = "/chat/completions"
COMPLETIONS = "/completions"
_UNSUPPORTED_STATUSES = (400, 404, 405, 422, 501)  # "this server cannot do what was asked"


def wire_messages(messages: Messages) -> list[dict[str, str]]:
    """Messages as the chat API takes them: role and string content only (assistant parts joined)."""
    return [{"role": m["role"], "content": assistant_text(m["content"])} for m in messages]


def _reply(choice: dict[str, Any]) -> str:
    content = choice["message"].get("content")
    return content if isinstance(content, str) else ""


def _top_logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The first generated position's candidate tokens (with the sampled one), or None without logprobs."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    top = first.get("top_logprobs")
    candidates = [entry for entry in top if isinstance(entry, dict)] if isinstance(top, list) else []
    return [first, *candidates]


def letter_scores_from_top(candidates: Sequence[dict[str, Any]], letters: Sequence[str]) -> dict[str, float]:
    """Each letter's best log-probability among ``candidates`` (tokens compared stripped); {} when none is there."""
    found: dict[str, float] = {}
    for entry in candidates:
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, (int, float)):
            continue
        key = token.strip()
        if key in letters:
            found[key] = max(found.get(key, -math.inf), float(logprob))
    return {letter: found.get(letter, -math.inf) for letter in letters} if found else {}


def letter_scores_from_reply(reply: str, letters: Sequence[str]) -> dict[str, float]:
    """0 for the letter the stripped ``reply`` is, -inf for the others; {} when it is no letter."""
    answer = reply.strip()
    if answer not in letters:
        return {}
    return {letter: 0.0 if letter == answer else -math.inf for letter in letters}


class OpenAIBackend:
    """A model served behind one or more OpenAI-compatible HTTP endpoints (see the module docstring)."""

    name = "openai"
    OPTIONS = (
        BackendOption(
            "base_urls",
            str,
            "openai: server URL such as http://localhost:8000/v1; repeat to spread requests.",
            operational=True,
            repeatable=True,
            flag="--base-url",
        ),
        BackendOption(
            "api_key_env",
            str,
            "openai: environment variable holding the API key (default OPENAI_API_KEY).",
            operational=True,
        ),
        BackendOption("concurrency", int, "openai: requests in flight at once.", operational=True),
        BackendOption("timeout", float, "openai: seconds to wait for one reply.", operational=True),
        BackendOption("max_retries", int, "openai: retries of a failed request.", operational=True),
        BackendOption("backoff", float, "openai: first retry delay in seconds.", operational=True),
        BackendOption("top_logprobs", int, "openai: log-probabilities asked per position (letter scoring)."),
    )

    def __init__(
        self,
        model: str,
        *,
        base_urls: list[str] | str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        top_logprobs: int = 20,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be the served model's name, got {model!r}")
        self._transport = Transport(
            base_urls,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
        )
        if top_logprobs < 1:
            raise ValueError(f"top_logprobs must be >= 1, got {top_logprobs}")
        self.model = model
        self.top_logprobs = top_logprobs
        # what the server turned out to support (None: not asked yet)
        self.logprobs_supported: bool | None = None
        self._n_supported: bool | None = None
        self._echo_zero: bool | None = None
        self._loglik_unsupported: str | None = None
        self._loglik_worked = False  # once it has, a 4xx is about one request, not the server
        self.tools_supported: bool | None = None  # whether the server takes ``tools`` (None: not asked)

    @property
    def base_urls(self) -> list[str]:
        """The servers' base URLs, normalised (``/v1`` added to a URL with no path)."""
        return self._transport.base_urls

    # ---- the Backend interface -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Backend, model, base URLs, concurrency and retry policy (never the API key)."""
        transport = self._transport
        return {
            "backend": self.name,
            "model": self.model,
            "base_urls": list(transport.base_urls),
            "concurrency": transport.concurrency,
            "timeout": transport.timeout,
            "max_retries": transport.max_retries,
            "top_logprobs": self.top_logprobs,
            "api_key_env": transport.api_key_env,
            "logprobs_supported": self.logprobs_supported,
            "tools_supported": self.tools_supported,
        }

    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """Score each prompt's letters as the reply's first token: top_logprobs, else the 1-token reply."""
        if len(prompts) != len(letters):
            raise ValueError(f"letter_scores: {len(prompts)} prompts but {len(letters)} letter lists")
        for i, options in enumerate(letters):
            if not options:
                raise ValueError(f"letter_scores: prompt {i} has no letters to score")

        async def run_all() -> list[LetterScores]:
            return await gather([self._letters_one(p, list(ls)) for p, ls in zip(prompts, letters)])

        return self._transport.run(run_all) if prompts else []

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[Completion]]:
        """``config.num_samples`` replies per prompt, in the prompts' order."""

        async def run_all() -> list[list[Completion]]:
            return await gather([self._generate_one(p, config) for p in prompts])

        return self._transport.run(run_all) if prompts else []

    def loglikelihoods(
        self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
    ) -> list[list[tuple[float, int]]]:
        """(summed log-probability, token count) of each continuation after its context, from echoed prompts."""
        if len(contexts) != len(continuations):
            raise ValueError(
                f"loglikelihoods: {len(contexts)} contexts but {len(continuations)} continuation lists"
            )
        for i, context in enumerate(contexts):
            if not context.strip():
                raise ValueError(f"loglikelihoods: context {i} is empty; a continuation needs a context")
        if self._loglik_unsupported is not None:
            raise NotSupported(self._loglik_unsupported)

        async def run_all() -> list[list[tuple[float, int]]]:
            return await gather([self._loglik_one(c, list(cs)) for c, cs in zip(contexts, continuations)])

        return self._transport.run(run_all) if contexts else []

    def close(self) -> None:
        """Close the HTTP connections and stop the backend's loop thread (a later call starts them again)."""
        self._transport.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- one request of each kind ------------------------------------------------------------

    async def _letters_one(self, prompt: Messages, letters: list[str]) -> LetterScores:
        body = {"model": self.model, "messages": wire_messages(prompt), "max_tokens": 1, "temperature": 0}
        if self.logprobs_supported is not False:
            asking = {**body, "logprobs": True, "top_logprobs": self.top_logprobs}
            try:
                choices = await self._transport.post(CHAT, asking, parse_chat_choices)
            except Rejected as exc:
                if self.logprobs_supported or exc.status not in (400, 422):
                    raise
                # the server refuses logprobs: ask for the 1-token reply alone
                choices = await self._transport.post(CHAT, body, parse_chat_choices)
                self.logprobs_supported = False
            else:
                candidates = _top_logprobs(choices[0])
                if candidates is not None:
                    self.logprobs_supported = True
                    return LetterScores(letter_scores_from_top(candidates, letters), "logprobs")
                if self.logprobs_supported is None:  # one answer without them after many with: just this one
                    self.logprobs_supported = False
        else:
            choices = await self._transport.post(CHAT, body, parse_chat_choices)
        return LetterScores(letter_scores_from_reply(_reply(choices[0]), letters), "completion")

    async def _generate_one(self, prompt: Messages, config: GenerationConfig) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(prompt),
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        if config.temperature > 0 and config.top_k is not None:
            body["top_k"] = config.top_k
        try:
            if config.tools == "calculator":
                return await gather([tool_sample(self, body, config, k) for k in range(config.num_samples)])
            return await self._samples(body, config.num_samples)
        except Rejected as exc:
            if "top_k" in body and "top_k" in exc.server_message.lower():
                raise BackendError(
                    f"the server refuses top_k ({exc.server_message}); it cannot sample with top-k: leave --top-k unset"
                ) from exc
            raise

    async def _samples(self, body: dict[str, Any], n: int) -> list[Completion]:
        if n == 1:
            choices, usage = await self._transport.post(CHAT, body, parse_chat_with_usage)
            return [completion_of(choices[0], usage)]
        replies: list[Completion] = []
        if self._n_supported is not False:
            try:
                choices = await self._transport.post(CHAT, {**body, "n": n}, parse_chat_choices)
            except Rejected as exc:
                if self._n_supported or exc.status not in (400, 422):
                    raise
            else:
                replies = [completion_of(choice) for choice in choices][:n]
            self._n_supported = len(replies) == n
            if self._n_supported:
                return replies
        extra = await gather(
            [
                self._transport.post(CHAT, {**body, "seed": body["seed"] + k}, parse_chat_with_usage)
                for k in range(len(replies), n)
            ]
        )
        return replies + [completion_of(choices[0], usage) for choices, usage in extra]

    async def _loglik_one(self, context: str, continuations: list[str]) -> list[tuple[float, int]]:
        if not continuations:
            return []
        prompts = [context.rstrip(), *(context + c for c in continuations)]
        while True:
            max_tokens = 0 if self._echo_zero is not False else 1
            body = {
                "model": self.model,
                "prompt": prompts,
                "max_tokens": max_tokens,
                "echo": True,
                "logprobs": 1,
                "temperature": 0,
            }
            try:
                choices = await self._transport.post(COMPLETIONS, body, parse_choices)
            except Rejected as exc:
                if max_tokens == 0 and self._echo_zero is not True and exc.status in (400, 422):
                    self._echo_zero = False  # e.g. "max_tokens must be at least 1": generate one, drop it
                    continue
                if exc.status in _UNSUPPORTED_STATUSES and not self._loglik_worked:
                    self._unsupported(f"the server cannot score prompts ({exc})")
                raise
            generated = [
                c.get("text", "") != p and str(c.get("text", "")).startswith(p)
                for p, c in zip(prompts, choices)
            ]
            if max_tokens == 0 and any(generated) and self._echo_zero is not True:
                self._echo_zero = False  # it generated despite max_tokens=0
                continue
            if max_tokens == 0:
                self._echo_zero = True
            return self._continuation_scores(prompts, choices, continuations, drop_last=max_tokens > 0)

    def _continuation_scores(
        self, prompts: list[str], choices: list[dict[str, Any]], continuations: list[str], *, drop_last: bool
    ) -> list[tuple[float, int]]:
        if len(choices) != len(prompts):
            self._unsupported(f"the server answered {len(prompts)} prompts with {len(choices)} choices")
        token_logprobs: list[list[Any]] = []
        for prompt, choice in zip(prompts, choices):
            logprobs = choice.get("logprobs")
            values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
            if not isinstance(values, list):
                self._unsupported("the server returned no prompt log-probabilities for echo=true, logprobs=1")
            if prompt not in str(choice.get("text", "")):
                self._unsupported("the server did not echo the prompt (echo=true)")
            token_logprobs.append(values[:-1] if drop_last else values)
        self._loglik_worked = True
        context_tokens = len(token_logprobs[0])
        results = []
        for continuation, values in zip(continuations, token_logprobs[1:]):
            own = values[context_tokens:]
            if continuation and not own:
                raise BackendError(f"continuation {continuation!r} got no tokens of its own from the server")
            if not all(isinstance(v, (int, float)) for v in own):
                raise BackendError(f"the server gave no log-probability for a token of {continuation!r}")
            results.append((float(math.fsum(own)), len(own)))
        return results

    def _unsupported(self, reason: str) -> NoReturn:
        self._loglik_unsupported = f"{self.model} at {', '.join(self.base_urls)}: {reason}"
        raise NotSupported(self._loglik_unsupported)
