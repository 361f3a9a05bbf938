"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

Requests go over ``httpx`` from an asyncio loop that runs in a private thread, so the synchronous
``Backend`` methods work from any thread, with or without an event loop of its own (a notebook,
a worker thread). At most ``concurrency`` requests are in flight at once. A base URL is what the
OpenAI client calls ``base_url`` (``http://host:8000/v1``); a URL with no path gets ``/v1``; with
none given, ``$OPENAI_BASE_URL`` (comma-separated for several) is used.

Spreading and retrying: successive requests start on successive base URLs (round-robin). A
request that meets a 429, a 5xx (except 501), a timeout, a connection error or a broken or
truncated JSON body is retried on the next URL after an exponential, jittered wait (or the
server's ``Retry-After``, whichever is longer), up to ``max_retries`` times. A URL that refuses
connections is skipped for ``DEAD_URL_COOLDOWN`` seconds while another URL is up, and the requests
it refused move to that URL at once. Any other 3xx/4xx is not retried: it raises ``BackendError``
with the server's own message. The API key is read from the environment variable ``api_key_env``
(none set: no ``Authorization`` header, as local servers expect) and never reported.

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
- ``loglikelihoods``: ``completions`` with ``echo=true``, ``logprobs=1`` and ``max_tokens=0``
  (``1`` where the server insists on generating; the generated token is dropped, as lm-eval
  does), one request per context holding the context alone and context + each continuation.
  The continuation's tokens are those of the whole text past the context's own token count,
  which is lm-eval's rule (trailing whitespace of the context moves to the continuation). A
  server without prompt log-probabilities raises ``NotSupported``, once and then at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError
from chattasks.eval.backends.base import GenerationConfig, LetterScores, Messages, NotSupported

BASE_URL_ENV = "OPENAI_BASE_URL"  # where base_urls come from when none are given, as for the OpenAI client
CHAT = "/chat/completions"
COMPLETIONS = "/completions"
MAX_BACKOFF = 30.0  # seconds: the longest computed wait between two attempts
MAX_RETRY_AFTER = 120.0  # seconds: the longest Retry-After honoured
DEAD_URL_COOLDOWN = 10.0  # seconds a URL that refused a connection is skipped
_UNSUPPORTED_STATUSES = (400, 404, 405, 422, 501)  # "this server cannot do what was asked"

T = TypeVar("T")


class _Rejected(BackendError):
    """The server answered a non-retryable status; ``status`` and ``server_message`` say which and why."""

    def __init__(self, message: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class _Retry(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None, dead_url: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.dead_url = dead_url


class _Malformed(Exception):
    """A 2xx body that parsed as JSON but lacks what the endpoint always returns."""


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _normalise_url(url: str) -> str:
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


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if error.get(key):
                    return _one_line(str(error[key]))
        elif isinstance(error, str) and error:
            return _one_line(error)
        if data.get("detail"):
            return _one_line(str(data["detail"]))
    return _one_line(response.text)


def wire_messages(messages: Messages) -> list[dict[str, str]]:
    """Messages as the chat API takes them: role and string content only (assistant parts joined)."""
    return [{"role": m["role"], "content": assistant_text(m["content"])} for m in messages]


def _choices(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise _Malformed(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise _Malformed("no 'choices' list in the response")
    return sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def _chat_choices(data: Any) -> list[dict[str, Any]]:
    choices = _choices(data)
    if not all(isinstance(c.get("message"), dict) for c in choices):
        raise _Malformed("a choice has no 'message'")
    return choices


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


class _Loop:
    """An asyncio loop in a daemon thread, with the backend's one httpx client living on it."""

    def __init__(self, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chattasks-openai", daemon=True)
        self.thread.start()
        self.client = self.run(self._make(make_client))

    @staticmethod
    async def _make(make_client: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
        return make_client()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:  # also KeyboardInterrupt: stop the requests still in flight
            future.cancel()
            raise

    def stop(self) -> None:
        if os.getpid() != self.pid or self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # collected on its own loop: cannot wait here
            self.loop.create_task(self.client.aclose()).add_done_callback(lambda _: self.loop.stop())
            return
        if self.thread.is_alive():
            try:
                self.run(self.client.aclose())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join()
        self.loop.close()


class OpenAIBackend:
    """A model served behind one or more OpenAI-compatible HTTP endpoints (see the module docstring)."""

    name = "openai"

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
        if base_urls is None:
            base_urls = os.environ.get(BASE_URL_ENV)
            if not base_urls:
                raise ValueError(
                    f"the openai backend needs a server: pass --base-url (e.g. http://localhost:8000/v1) "
                    f"or set ${BASE_URL_ENV}"
                )
        urls = [u for u in base_urls.split(",") if u.strip()] if isinstance(base_urls, str) else base_urls
        if not urls:
            raise ValueError(f"base_urls must name at least one server, got {base_urls!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        if top_logprobs < 1:
            raise ValueError(f"top_logprobs must be >= 1, got {top_logprobs}")
        self.model = model
        self.base_urls = [_normalise_url(u) for u in urls]
        self.api_key_env = api_key_env
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.top_logprobs = max_retries, backoff, top_logprobs
        self._api_key = os.environ.get(api_key_env) or None
        self._rotation = itertools.count()
        self._down_until: dict[str, float] = {}
        self._jitter = random.Random()
        self._loop: _Loop | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._semaphore: asyncio.Semaphore | None = None
        # what the server turned out to support (None: not asked yet)
        self.logprobs_supported: bool | None = None
        self._n_supported: bool | None = None
        self._echo_zero: bool | None = None
        self._loglik_unsupported: str | None = None
        self._loglik_worked = False  # once it has, a 4xx is about one request, not the server

    # ---- the Backend interface -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Backend, model, base URLs, concurrency and retry policy (never the API key)."""
        return {
            "backend": self.name,
            "model": self.model,
            "base_urls": list(self.base_urls),
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "top_logprobs": self.top_logprobs,
            "api_key_env": self.api_key_env,
            "logprobs_supported": self.logprobs_supported,
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
            return await _gather([self._letters_one(p, list(ls)) for p, ls in zip(prompts, letters)])

        return self._run(run_all) if prompts else []

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[str]]:
        """``config.num_samples`` replies per prompt, in the prompts' order."""

        async def run_all() -> list[list[str]]:
            return await _gather([self._generate_one(p, config) for p in prompts])

        return self._run(run_all) if prompts else []

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
            return await _gather([self._loglik_one(c, list(cs)) for c, cs in zip(contexts, continuations)])

        return self._run(run_all) if contexts else []

    def close(self) -> None:
        """Close the HTTP connections and stop the backend's loop thread (a later call starts them again)."""
        if self._finalizer is not None:
            self._finalizer()
        self._loop, self._finalizer, self._semaphore = None, None, None

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
                choices = await self._post(CHAT, asking, _chat_choices)
            except _Rejected as exc:
                if self.logprobs_supported or exc.status not in (400, 422):
                    raise
                choices = await self._post(CHAT, body, _chat_choices)  # the server refuses logprobs
                self.logprobs_supported = False
            else:
                candidates = _top_logprobs(choices[0])
                if candidates is not None:
                    self.logprobs_supported = True
                    return LetterScores(letter_scores_from_top(candidates, letters), "logprobs")
                if self.logprobs_supported is None:  # one answer without them after many with: just this one
                    self.logprobs_supported = False
        else:
            choices = await self._post(CHAT, body, _chat_choices)
        return LetterScores(letter_scores_from_reply(_reply(choices[0]), letters), "completion")

    async def _generate_one(self, prompt: Messages, config: GenerationConfig) -> list[str]:
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
            return await self._samples(body, config.num_samples)
        except _Rejected as exc:
            if "top_k" in body and "top_k" in exc.server_message.lower():
                raise BackendError(
                    f"the server refuses top_k ({exc.server_message}); it cannot sample with top-k: leave --top-k unset"
                ) from exc
            raise

    async def _samples(self, body: dict[str, Any], n: int) -> list[str]:
        if n == 1:
            return [_reply((await self._post(CHAT, body, _chat_choices))[0])]
        replies: list[str] = []
        if self._n_supported is not False:
            try:
                choices = await self._post(CHAT, {**body, "n": n}, _chat_choices)
            except _Rejected as exc:
                if self._n_supported or exc.status not in (400, 422):
                    raise
            else:
                replies = [_reply(choice) for choice in choices][:n]
            self._n_supported = len(replies) == n
            if self._n_supported:
                return replies
        extra = await _gather(
            [
                self._post(CHAT, {**body, "seed": body["seed"] + k}, _chat_choices)
                for k in range(len(replies), n)
            ]
        )
        return replies + [_reply(choices[0]) for choices in extra]

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
                choices = await self._post(COMPLETIONS, body, _choices)
            except _Rejected as exc:
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

    # ---- transport -------------------------------------------------------------------------

    def _run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self._loop
        if loop is None or loop.pid != os.getpid():  # first use, after close(), or in a forked child
            loop = self._loop = _Loop(self._make_client)
            self._semaphore = None
            self._finalizer = weakref.finalize(self, loop.stop)
        return loop.run(make())

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(timeout=self.timeout, headers=headers, limits=limits)

    def _pick_url(self, position: int) -> str:
        now = time.monotonic()
        n = len(self.base_urls)
        for step in range(n):
            url = self.base_urls[(position + step) % n]
            if self._down_until.get(url, 0.0) <= now:
                return url
        return self.base_urls[position % n]

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        computed = min(MAX_BACKOFF, self.backoff * 2**attempt) * self._jitter.uniform(0.5, 1.0)
        return max(computed, retry_after or 0.0)

    async def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], T]) -> T:
        """POST ``body`` to ``path`` under the retry policy; ``parse`` the JSON (raising _Malformed to retry)."""
        assert self._loop is not None  # _run made it
        client = self._loop.client
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        start = next(self._rotation)
        tried: list[str] = []
        reason = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            url = self._pick_url(start + attempt)
            tried.append(url)
            try:
                result = await self._attempt(client, url + path, body, parse)
            except _Retry as failure:
                reason = failure.reason
                if failure.dead_url:
                    self._down_until[url] = time.monotonic() + DEAD_URL_COOLDOWN
                if attempt + 1 < attempts:
                    other_up = failure.dead_url and self._pick_url(start + attempt + 1) != url
                    await asyncio.sleep(0.0 if other_up else self._wait(attempt, failure.retry_after))
            else:
                self._down_until.pop(url, None)
                return result
        where = ", ".join(dict.fromkeys(tried))
        raise BackendError(
            f"no answer from {where} ({path.lstrip('/')}) after {attempts} attempts, last: {reason}; "
            "check that the server is running and reachable at --base-url"
        )

    async def _attempt(
        self, client: httpx.AsyncClient, url: str, body: dict[str, Any], parse: Callable[[Any], T]
    ) -> T:
        assert self._semaphore is not None
        try:
            async with self._semaphore:
                response = await client.post(url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Retry(
                f"cannot connect ({_one_line(str(exc)) or type(exc).__name__})", dead_url=True
            ) from exc
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out after {self.timeout:g}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {_one_line(str(exc))}") from exc
        status = response.status_code
        if status == 429 or (status >= 500 and status != 501):
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            raise _Retry(f"HTTP {status}: {_server_message(response)}", retry_after=retry_after)
        if not 200 <= status < 300:
            message = _server_message(response)
            hint = ""
            if status in (401, 403):
                hint = f"; set ${self.api_key_env} to a valid API key"
            elif status == 404:
                hint = "; check --model and --base-url (usually ending in /v1)"
            raise _Rejected(f"{url} answered HTTP {status}: {message}{hint}", status, message)
        try:
            return parse(response.json())
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _Retry(f"broken JSON in the response ({_one_line(str(exc))})") from exc
        except _Malformed as exc:
            raise _Retry(f"unexpected response: {exc}") from exc


async def _gather(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently, results in order; on the first error cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
