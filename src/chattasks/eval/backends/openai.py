"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

How requests reach the servers -- the loop thread, base URLs and ``$OPENAI_BASE_URL``, adaptive
concurrency, retries and when the run gives up -- is ``openai_transport``; what the server
accepts is probed once (``openai_probe``); this module decides what to ask and reads the answers.

How each kind of question is asked:

- ``letter_scores``: ``chat/completions`` with ``max_tokens=1`` and ``temperature=0``, plus
  ``logprobs=true`` and ``top_logprobs=N`` when the server returns them. A letter's score is the
  best log-probability among the first position's top tokens that equal the letter once
  surrounding whitespace is stripped (``"A"`` and ``" A"`` both count); letters not among them
  get ``-inf``; when none of the letters is among them the scores are empty (so ``best()`` is
  None: an extraction failure, never a silent first letter). Without log-probabilities the
  1-token reply is used instead: the stripped reply scores 0 if it is a letter, and the method
  becomes ``"completion"``.
- ``generate``: ``chat/completions`` with ``temperature``, ``max_tokens``, ``seed``, ``n`` and,
  when sampling with top-k, ``top_k`` as an extra field (vLLM, SGLang and llama.cpp take it; a
  server that rejects it gets a clear error rather than silently different decoding). A server
  that ignores or refuses ``n`` is asked once per sample, with seeds ``seed``, ``seed + 1``, ...
  Each reply is a ``Completion``: the content, the server's separate reasoning
  (``reasoning_content``, or ``reasoning``), the finish reason and, for one sample a request, the
  token counts of ``usage``.
- ``generate`` with ``config.tools == "calculator"``: each sample is a tool conversation
  (``openai_tools.tool_sample``). Under ``auto`` no tools are offered: whether a served model
  calls tools cannot be told without asking it.
- ``loglikelihoods``: ``completions`` with ``echo=true``, ``logprobs=1`` and ``max_tokens=0``
  (``1`` where the server insists on generating; the generated token is dropped, as lm-eval
  does), one request per context holding the context alone and context + each continuation
  (one request per text where the server takes one prompt at a time). The continuation's
  tokens are those of the whole text past the context's own token count, which is lm-eval's
  rule (trailing whitespace of the context moves to the continuation). A server without prompt
  log-probabilities raises ``NotSupported``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError, NotSupported, Rejected
from chattasks.eval.backends.base import BackendOption, Completion, GenerationConfig, LetterScores, Messages
from chattasks.eval.backends.openai_limit import TransportStatus
from chattasks.eval.backends.openai_loop import gather
from chattasks.eval.backends.openai_probe import (
    CHAT,
    COMPLETIONS,
    Capabilities,
    first_position,
    probe_chat,
    probe_echo,
    probe_n,
)
from chattasks.eval.backends.openai_tools import completion_of, parse_chat_with_usage, tool_sample
from chattasks.eval.backends.openai_wire import parse_chat_choices, parse_choices

# re-exported: callers and tests import it from here
from chattasks.eval.backends.openai_wire import retry_after_seconds as retry_after_seconds

GIVE_UP_AFTER = 600.0
"""Seconds with no answer from any server, while requests wait, after which a run ends (default)."""


def wire_messages(messages: Messages) -> list[dict[str, str]]:
    """Messages as the chat API takes them: role and string content only (assistant parts joined)."""
    return [{"role": m["role"], "content": assistant_text(m["content"])} for m in messages]


def _reply(choice: dict[str, Any]) -> str:
    content = choice["message"].get("content")
    return content if isinstance(content, str) else ""


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
        BackendOption(
            "concurrency",
            int,
            "openai: most requests in flight per server (default 16; lowered while the server is overloaded).",
            operational=True,
        ),
        BackendOption(
            "timeout",
            float,
            "openai: seconds a server may answer nothing while requests wait before it counts as "
            "stalled: its concurrency is halved and this wait doubles (default 60).",
            operational=True,
        ),
        BackendOption(
            "max_retries",
            int,
            "openai: retries of a request after errors (default 6; busy answers not counted).",
            operational=True,
        ),
        BackendOption(
            "backoff", float, "openai: first retry delay in seconds (default 0.5).", operational=True
        ),
        BackendOption(
            "give_up_after",
            float,
            "openai: end the run when no server has answered for this many seconds (default 600).",
            operational=True,
        ),
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
        give_up_after: float = GIVE_UP_AFTER,
        top_logprobs: int = 20,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be the served model's name, got {model!r}")
        from chattasks.eval.backends.openai_transport import Transport  # httpx: loaded when used

        self._transport = Transport(
            base_urls,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            give_up_after=give_up_after,
        )
        if top_logprobs < 1:
            raise ValueError(f"top_logprobs must be >= 1, got {top_logprobs}")
        self.model = model
        self.top_logprobs = top_logprobs
        self.capabilities = Capabilities()  # what the server accepts, probed when first needed
        self.tools_supported: bool | None = None  # whether the server takes ``tools`` (None: not asked)
        self._probing = threading.Lock()

    @property
    def base_urls(self) -> list[str]:
        """The servers' base URLs, normalised (``/v1`` added to a URL with no path)."""
        return self._transport.base_urls

    # ---- the Backend interface -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Backend, model, base URLs, concurrency and retry settings and what the run met, capabilities (never the API key)."""
        logprobs = self.capabilities.logprobs
        return {
            "backend": self.name,
            "model": self.model,
            "base_urls": list(self._transport.base_urls),
            **self._transport.describe(),
            "top_logprobs": self.top_logprobs,
            "api_key_env": self._transport.api_key_env,
            "logprobs_supported": None if logprobs is None else logprobs == "returned",
            "capabilities": self.capabilities.to_dict(),
            "tools_supported": self.tools_supported,
        }

    def status(self) -> TransportStatus:
        """The concurrency limit in force, requests in flight and retries so far (for a progress line)."""
        return self._transport.status()

    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """Score each prompt's letters as the reply's first token: top_logprobs, else the 1-token reply."""
        if len(prompts) != len(letters):
            raise ValueError(f"letter_scores: {len(prompts)} prompts but {len(letters)} letter lists")
        for i, options in enumerate(letters):
            if not options:
                raise ValueError(f"letter_scores: prompt {i} has no letters to score")
        if not prompts:
            return []
        self._probe(
            "chat", lambda: probe_chat(self._transport, self.model, self.top_logprobs, self.capabilities)
        )

        async def run_all() -> list[LetterScores]:
            return await gather([self._letters_one(p, list(ls)) for p, ls in zip(prompts, letters)])

        return self._transport.run(run_all)

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[Completion]]:
        """``config.num_samples`` replies per prompt, in the prompts' order."""
        if not prompts:
            return []
        self._probe(
            "chat", lambda: probe_chat(self._transport, self.model, self.top_logprobs, self.capabilities)
        )
        if config.num_samples > 1:
            self._probe("n", lambda: probe_n(self._transport, self.model, self.capabilities))

        async def run_all() -> list[list[Completion]]:
            return await gather([self._generate_one(p, config) for p in prompts])

        return self._transport.run(run_all)

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
        if not contexts:
            return []
        self._probe("echo", lambda: probe_echo(self._transport, self.model, self.capabilities))
        if self.capabilities.echo != "returned":
            self._unsupported(f"the server cannot score prompts ({self.capabilities.echo_detail})")

        async def run_all() -> list[list[tuple[float, int]]]:
            return await gather([self._loglik_one(c, list(cs)) for c, cs in zip(contexts, continuations)])

        return self._transport.run(run_all)

    def close(self) -> None:
        """Close the HTTP connections and stop the backend's loop thread (a later call starts them again)."""
        self._transport.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- probing and one request of each kind ----------------------------------------------------

    def _probe(self, what: str, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Ask the server about ``what`` (a Capabilities field) unless it was asked already."""
        with self._probing:
            if getattr(self.capabilities, what) is None:
                self._transport.run(make)

    async def _letters_one(self, prompt: Messages, letters: list[str]) -> LetterScores:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(prompt),
            "max_tokens": 1,
            "temperature": 0,
        }
        if self.capabilities.logprobs == "returned":
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        choices = await self._transport.post(CHAT, body, parse_chat_choices)
        candidates = first_position(choices[0]) if "logprobs" in body else None
        if candidates is not None:
            return LetterScores(letter_scores_from_top(candidates, letters), "logprobs")
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
        replies: list[Completion] = []
        if n > 1 and self.capabilities.n == "honoured":
            choices = await self._transport.post(CHAT, {**body, "n": n}, parse_chat_choices)
            replies = [completion_of(choice) for choice in choices][:n]
        missing = await gather(
            [
                self._transport.post(CHAT, {**body, "seed": body["seed"] + k}, parse_chat_with_usage)
                for k in range(len(replies), n)
            ]
        )
        return replies + [completion_of(choices[0], usage) for choices, usage in missing]

    async def _loglik_one(self, context: str, continuations: list[str]) -> list[tuple[float, int]]:
        if not continuations:
            return []
        prompts = [context.rstrip(), *(context + c for c in continuations)]
        max_tokens = 0 if self.capabilities.max_tokens_zero else 1
        body = {"model": self.model, "max_tokens": max_tokens, "echo": True, "logprobs": 1, "temperature": 0}
        if self.capabilities.prompt_lists:
            choices = await self._transport.post(COMPLETIONS, {**body, "prompt": prompts}, parse_choices)
        else:
            alone = await gather(
                [self._transport.post(COMPLETIONS, {**body, "prompt": p}, parse_choices) for p in prompts]
            )
            choices = [found[0] for found in alone]
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
        raise NotSupported(f"{self.model} at {', '.join(self.base_urls)}: {reason}")
