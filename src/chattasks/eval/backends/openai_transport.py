"""HTTP transport of the ``openai`` backend: base URLs, adaptive concurrency, waiting and retrying.

Requests go over ``httpx`` from the backend's loop thread (``openai_loop``). A base URL is what
the OpenAI client calls ``base_url`` (``http://host:8000/v1``); with none given,
``$OPENAI_BASE_URL`` (comma-separated for several) is used.

Concurrency: each server gets at most ``concurrency`` requests at once, and fewer while it shows
overload (``openai_limit``): its limit is halved when it stalls, answers HTTP 429 or 503 or
resets a connection, and grows back by one per ``limit`` successes. A request goes to the next
server in turn (round-robin) with room, else to any server with room, else it waits for room;
a failed request waits for room again before its retry.

Waiting: a request waits for its answer as long as its server keeps answering requests. A
server that answers nothing for ``timeout`` seconds while requests wait has stalled: its limit
is halved and its patience doubles (up to ``give_up_after``), and the requests already sent keep
waiting -- sending them again would only queue their work twice, since servers such as
``transformers serve`` finish the work of a client that stopped waiting. So a slow server makes
the run slower, never failed. A request whose server has answered nothing at all for
``give_up_after`` seconds since it was sent is retried on another server that answers; when no
server has answered anything for ``give_up_after`` seconds while requests waited, the run ends
with a one-line ``BackendError`` (its finished samples are in the journal: restart the server
and resume).

Retries, by what went wrong: HTTP 429 or 503 (busy): after a backoff or the server's
``Retry-After``, not counted against ``max_retries`` (the silence clock bounds them). A refused
connection: the server is skipped for ``DEAD_URL_COOLDOWN`` seconds while another is up (the
request moves there at once), else retried after a backoff; counted only until a server has
answered once in this run, so a wrong ``--base-url`` fails within seconds, while a server that
restarts is waited for. Anything else worth retrying (another 5xx except 501, a reset
connection, a broken, truncated or malformed reply, a request its server never answered):
after an exponential, jittered backoff, at most ``max_retries`` times per request. Any other
3xx/4xx is not retried: it raises ``Rejected`` (a ``BackendError``) with the server's own
message. The API key is read from the environment variable ``api_key_env`` (none set: no
``Authorization`` header, as local servers expect) and never reported.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from chattasks.errors import BackendError, Rejected
from chattasks.eval.backends.openai_limit import AdaptiveLimit, ServerLoad, TransportStatus
from chattasks.eval.backends.openai_loop import LoopThread
from chattasks.eval.backends.openai_wire import (
    MalformedReply,
    normalise_url,
    one_line,
    retry_after_seconds,
    server_message,
)

BASE_URL_ENV = "OPENAI_BASE_URL"  # where base_urls come from when none are given, as for the OpenAI client
MAX_BACKOFF = 30.0  # seconds: the longest computed wait between two attempts
DEAD_URL_COOLDOWN = 10.0  # seconds a URL that refused a connection is skipped
BUSY_STATUSES = (429, 503)  # "too many requests", "unavailable": the server asks for less load

# kinds of failed attempt
SILENT, BUSY, CONNECT, RESET, SERVER_ERROR, BAD_REPLY = (
    "silent",
    "busy",
    "connect",
    "reset",
    "server_error",
    "bad_reply",
)
OVERLOAD = (SILENT, BUSY, RESET)  # kinds that cut the server's concurrency limit

T = TypeVar("T")


class _Retry(Exception):
    """One attempt failed in a way worth retrying; ``kind`` is one of the kinds above."""

    def __init__(self, kind: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after


class Transport:
    """POSTs JSON bodies to one or more OpenAI-compatible base URLs under the policy of the module docstring.

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
        give_up_after: float,
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
        for name, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, number in (("timeout", timeout), ("give_up_after", give_up_after)):
            if not number > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {number}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        self.base_urls = [normalise_url(u) for u in urls]
        self.api_key_env = api_key_env
        self.concurrency, self.timeout, self.give_up_after = concurrency, timeout, give_up_after
        self.max_retries, self.backoff = max_retries, backoff
        self.servers = {
            url: ServerLoad(AdaptiveLimit(concurrency), min(timeout, give_up_after)) for url in self.base_urls
        }
        self.retries: Counter[str] = Counter()  # failed attempts tried again, by kind
        self.answered = 0  # requests answered with a 2xx
        self._api_key = os.environ.get(api_key_env) or None
        self._rotation = itertools.count()
        self._jitter = random.Random()
        self._outstanding = 0  # requests inside post(), waiting or in flight
        self._quiet_since = time.monotonic()  # the silence clock: last answer, or when requests began
        self._waiters: list[asyncio.Future[None]] = []  # requests waiting for room, woken by _release
        self.loop: LoopThread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # ---- the loop ------------------------------------------------------------------------------

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine ``make()`` on the loop thread (started on first use, after close, in a fork)."""
        loop = self.loop
        if loop is None or loop.pid != os.getpid():  # first use, after close(), or in a forked child
            loop = self.loop = LoopThread(self._make_client)
            self._finalizer = weakref.finalize(self, loop.stop)
            for server in self.servers.values():
                server.limit.in_flight = 0  # requests of a dead loop (a fork's parent) are not ours
            self._outstanding, self._waiters = 0, []
        return loop.run(make())

    def close(self) -> None:
        """Close the HTTP connections and stop the loop thread (a later ``run`` starts them again)."""
        if self._finalizer is not None:
            self._finalizer()
        self.loop, self._finalizer = None, None

    # ---- what it has seen ----------------------------------------------------------------------

    def status(self) -> TransportStatus:
        """The limits in force and the requests and retries so far (safe to read from any thread)."""
        servers = list(self.servers.values())
        return TransportStatus(
            limit=sum(s.limit.limit for s in servers),
            maximum=sum(s.limit.maximum for s in servers),
            in_flight=sum(s.limit.in_flight for s in servers),
            requests=self.answered,
            retries=sum(dict(self.retries).values()),  # one atomic copy: the loop may be adding a kind
            stalls=sum(s.stalls for s in servers),
        )

    def describe(self) -> dict[str, Any]:
        """The settings, and what the run met: each server's limits, stalls and patience, retries by kind."""
        return {
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "give_up_after": self.give_up_after,
            "servers": {
                url: {
                    "limit_final": s.limit.limit,
                    "limit_lowest": s.limit.lowest,
                    "cuts": s.limit.cuts,
                    "stalls": s.stalls,
                    "patience_final": s.patience,
                }
                for url, s in self.servers.items()
            },
            "requests": self.answered,
            "retries": dict(sorted(self.retries.items())),
        }

    # ---- one request ---------------------------------------------------------------------------

    async def post(
        self, path: str, body: dict[str, Any], parse: Callable[[Any], T], *, once: bool = False
    ) -> T:
        """POST ``body`` to ``path`` under the retry policy; ``parse`` the JSON (a malformed reply is retried).

        Raises ``Rejected`` for a non-retryable status and ``BackendError`` once the retries are
        spent or the servers stay silent. ``once``: a single attempt, any failure raised as
        ``BackendError`` (for probing what a server accepts). Call it from a coroutine given to ``run``.
        """
        if self._outstanding == 0:
            self._quiet_since = time.monotonic()
        self._outstanding += 1
        try:
            return await self._post(path, body, parse, once)
        finally:
            self._outstanding -= 1

    async def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], T], once: bool) -> T:
        position = next(self._rotation)
        attempts = counted = 0
        avoid: str | None = None
        while True:
            url, epoch = await self._acquire(position + attempts, avoid)
            attempts += 1
            try:
                result = await self._attempt(url, path, body, parse)
            except _Retry as failure:
                self._release(url, epoch, failure.kind)
                if once:
                    raise BackendError(f"{url}{path}: {failure.reason}") from None
                if failure.kind != BUSY and (failure.kind != CONNECT or not self.answered):
                    counted += 1
                if counted > self.max_retries:
                    where = ", ".join(self.base_urls)
                    raise BackendError(
                        f"no answer from {where} ({path.lstrip('/')}) after {attempts} attempts, "
                        f"last: {failure.reason}; check that the server is running and reachable at --base-url"
                    ) from None
                if self._all_silent(failure, url):
                    where = ", ".join(self.base_urls)
                    raise BackendError(
                        f"no answer from {where} for {self.give_up_after:g} s (last: {failure.reason}); "
                        "gave up (give_up_after). Finished samples are kept: restart the server and "
                        "continue the run with --resume"
                    ) from None
                self.retries[failure.kind] += 1
                await self._pause(url, failure, attempts)
                avoid = url
            except BaseException:
                self._release(url, epoch, None)
                raise
            else:
                self._release(url, epoch, "")
                return result

    async def _acquire(self, position: int, avoid: str | None) -> tuple[str, int]:
        """Wait until a server has room; (its URL, the epoch of its limit) with the request counted in."""
        while True:
            url = self._choose(position, avoid)
            if url is not None:
                return url, self.servers[url].limit.start()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _choose(self, position: int, avoid: str | None) -> str | None:
        """The server for the next attempt: the first in turn with room that is up (and not ``avoid``)."""
        now = time.monotonic()
        n = len(self.base_urls)
        order = [self.base_urls[(position + step) % n] for step in range(n)]
        up = [url for url in order if self.servers[url].down_until <= now]
        for candidates in ([u for u in up if u != avoid], up, [] if up else order):
            for url in candidates:
                if self.servers[url].limit.has_room():
                    return url
        return None

    def _release(self, url: str, epoch: int, outcome: str | None) -> None:
        """End an attempt: "" for an answer, a failure kind, or None (cancelled, rejected); wake the waiters."""
        server = self.servers[url]
        if outcome == "":
            server.limit.succeeded()
            self.answered += 1
            self._quiet_since = server.heard = time.monotonic()
            server.down_until = 0.0
        elif outcome in OVERLOAD:
            server.limit.overloaded(epoch)
        else:
            server.limit.failed()
        if outcome in (CONNECT, SILENT):
            server.down_until = time.monotonic() + DEAD_URL_COOLDOWN
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _another_up(self, url: str) -> bool:
        now = time.monotonic()
        return any(s.down_until <= now for u, s in self.servers.items() if u != url)

    def _all_silent(self, failure: _Retry, url: str) -> bool:
        """Whether no server has answered for give_up_after seconds and none is left to try."""
        if failure.kind in (SILENT, CONNECT) and self._another_up(url):
            return False
        return time.monotonic() - self._quiet_since >= self.give_up_after

    async def _pause(self, url: str, failure: _Retry, attempts: int) -> None:
        """Wait before the next attempt: not at all when another server is up to take it."""
        now = time.monotonic()
        if failure.kind in (SILENT, CONNECT) and self._another_up(url):
            return
        wait = min(MAX_BACKOFF, self.backoff * 2 ** (attempts - 1)) * self._jitter.uniform(0.5, 1.0)
        wait = max(wait, failure.retry_after or 0.0)
        left = self.give_up_after - (now - self._quiet_since)
        await asyncio.sleep(max(0.0, min(wait, left + 0.05)))

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        most = self.concurrency * len(self.base_urls)
        limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
        # no read timeout: _watch decides how long a request may wait
        timeout = httpx.Timeout(None, connect=self.timeout, write=self.timeout)
        return httpx.AsyncClient(timeout=timeout, headers=headers, limits=limits)

    async def _watch(self, url: str, request: asyncio.Future[httpx.Response]) -> httpx.Response:
        """Wait for ``request`` while its server answers; count stalls; _Retry(SILENT) after give_up_after of silence."""
        server = self.servers[url]
        sent = time.monotonic()
        while True:
            quiet = server.quiet_since(sent)
            silent_for = time.monotonic() - max(sent, server.heard)
            if silent_for >= self.give_up_after:
                raise _Retry(SILENT, f"{url} answered nothing for {silent_for:.0f} s")
            wait = (
                min(quiet + server.patience, max(sent, server.heard) + self.give_up_after) - time.monotonic()
            )
            done, _ = await asyncio.wait({request}, timeout=max(wait, 0.0))
            if done:
                return request.result()
            now = time.monotonic()
            if now - server.quiet_since(sent) >= server.patience:
                server.stall(now, self.give_up_after)

    async def _attempt(self, url: str, path: str, body: dict[str, Any], parse: Callable[[Any], T]) -> T:
        assert self.loop is not None  # run made it
        request = asyncio.ensure_future(self.loop.client.post(url + path, json=body))
        try:
            response = await self._watch(url, request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Retry(CONNECT, f"cannot connect ({one_line(str(exc)) or type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # the connection broke (or a write timed out)
            raise _Retry(RESET, f"{type(exc).__name__}: {one_line(str(exc))}") from exc
        finally:
            request.cancel()  # a no-op once it is done
        status = response.status_code
        if status in BUSY_STATUSES or (status >= 500 and status != 501):
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            kind = BUSY if status in BUSY_STATUSES else SERVER_ERROR
            raise _Retry(kind, f"HTTP {status}: {server_message(response)}", retry_after)
        if not 200 <= status < 300:
            message = server_message(response)
            hint = ""
            if status in (401, 403):
                hint = f"; set ${self.api_key_env} to a valid API key"
            elif status == 404:
                hint = "; check --model and --base-url (usually ending in /v1)"
            raise Rejected(f"{url}{path} answered HTTP {status}: {message}{hint}", status, message)
        try:
            return parse(response.json())
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _Retry(BAD_REPLY, f"broken JSON in the response ({one_line(str(exc))})") from exc
        except MalformedReply as exc:
            raise _Retry(BAD_REPLY, f"unexpected response: {exc}") from exc
