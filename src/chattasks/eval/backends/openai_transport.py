"""HTTP transport of the ``openai`` backend: the loop thread, base URLs, spreading, retries and errors.

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
it refused move to that URL at once. Any other 3xx/4xx is not retried: it raises ``Rejected`` (a
``BackendError``) with the server's own message. The API key is read from the environment
variable ``api_key_env`` (none set: no ``Authorization`` header, as local servers expect) and
never reported.

What a request asks is the backend's business (``chattasks.eval.backends.openai``); this module
only delivers a JSON body to ``base_url + path`` and hands back the parsed reply, checked by a
parser such as ``parse_choices`` (a reply without the ``choices`` every endpoint returns is retried).
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
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from chattasks.errors import BackendError, Rejected

BASE_URL_ENV = "OPENAI_BASE_URL"  # where base_urls come from when none are given, as for the OpenAI client
MAX_BACKOFF = 30.0  # seconds: the longest computed wait between two attempts
MAX_RETRY_AFTER = 120.0  # seconds: the longest Retry-After honoured
DEAD_URL_COOLDOWN = 10.0  # seconds a URL that refused a connection is skipped

T = TypeVar("T")


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


def parse_choices(data: Any) -> list[dict[str, Any]]:
    """The ``choices`` of a completions reply in ``index`` order; a reply without them is retried."""
    if not isinstance(data, dict):
        raise _Malformed(f"expected a JSON object, got {type(data).__name__}")
    found = data.get("choices")
    if not isinstance(found, list) or not found or not all(isinstance(c, dict) for c in found):
        raise _Malformed("no 'choices' list in the response")
    return sorted(found, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def parse_chat_choices(data: Any) -> list[dict[str, Any]]:
    """The ``choices`` of a chat completions reply, each with a ``message``; a reply without them is retried."""
    found = parse_choices(data)
    if not all(isinstance(c.get("message"), dict) for c in found):
        raise _Malformed("a choice has no 'message'")
    return found


async def gather(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently, results in order; on the first error cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class LoopThread:
    """An asyncio loop in a daemon thread, with the transport's one httpx client living on it."""

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
        """Run ``coroutine`` on the loop and wait for its result; an interrupted wait cancels it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:  # also KeyboardInterrupt: stop the requests still in flight
            future.cancel()
            raise

    def stop(self) -> None:
        """Close the client, stop the loop and join its thread (only in the process that started it)."""
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


class Transport:
    """POSTs JSON bodies to one or more OpenAI-compatible base URLs under the retry policy (module docstring).

    ``base_urls`` is a list, a comma-separated string, or None for ``$OPENAI_BASE_URL``; bad
    arguments raise ValueError naming the value. Nothing is started until the first ``run``.
    """

    def __init__(
        self,
        base_urls: list[str] | str | None,
        *,
        api_key_env: str,
        concurrency: int,
        timeout: float,
        max_retries: int,
        backoff: float,
    ) -> None:
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
        self.base_urls = [_normalise_url(u) for u in urls]
        self.api_key_env = api_key_env
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff = max_retries, backoff
        self._api_key = os.environ.get(api_key_env) or None
        self._rotation = itertools.count()
        self._down_until: dict[str, float] = {}
        self._jitter = random.Random()
        self.loop: LoopThread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine ``make()`` on the loop thread (started on first use, after close, in a fork)."""
        loop = self.loop
        if loop is None or loop.pid != os.getpid():  # first use, after close(), or in a forked child
            loop = self.loop = LoopThread(self._make_client)
            self._semaphore = None
            self._finalizer = weakref.finalize(self, loop.stop)
        return loop.run(make())

    def close(self) -> None:
        """Close the HTTP connections and stop the loop thread (a later ``run`` starts them again)."""
        if self._finalizer is not None:
            self._finalizer()
        self.loop, self._finalizer, self._semaphore = None, None, None

    async def post(self, path: str, body: dict[str, Any], parse: Callable[[Any], T]) -> T:
        """POST ``body`` to ``path`` under the retry policy; ``parse`` the JSON (a malformed reply is retried).

        Raises ``Rejected`` for a non-retryable status and ``BackendError`` once the retries are spent.
        Call it from a coroutine given to ``run``.
        """
        assert self.loop is not None  # run made it
        client = self.loop.client
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
            raise Rejected(f"{url} answered HTTP {status}: {message}{hint}", status, message)
        try:
            return parse(response.json())
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _Retry(f"broken JSON in the response ({_one_line(str(exc))})") from exc
        except _Malformed as exc:
            raise _Retry(f"unexpected response: {exc}") from exc
