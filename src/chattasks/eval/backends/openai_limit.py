"""Adaptive concurrency of the ``openai`` backend: how many requests one server gets at once.

Each base URL has an ``AdaptiveLimit``, TCP's congestion control applied to requests (additive
increase, multiplicative decrease):

- The limit starts at ``maximum`` (``--concurrency``); a request is sent only while fewer than
  ``limit`` are in flight to that server (``has_room``).
- When a server shows it is overloaded, the limit is halved, at least 1 (``cut``). A failed
  request (HTTP 429 or 503, a reset connection) cuts it only if it was sent after the last cut
  (``epoch``): one burst of failures is one signal, as TCP reacts once per window.
- Each run of ``limit`` successes raises the limit by one, up to ``maximum``.

``ServerLoad`` adds the server's patience: how long it may answer nothing while requests wait
before it counts as stalled (``--timeout``). A stall cuts the limit and doubles the patience
(up to ``give_up_after``); the requests already sent keep waiting for their answers. A failed
request waits for room again before its retry, so after a cut it goes out only once the
requests in flight drop below the new limit. ``TransportStatus`` is the snapshot shown beside
the progress bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class AdaptiveLimit:
    """The number of requests one server may have in flight, adapted to how it answers (module docstring)."""

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be >= 1, got {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.lowest = maximum  # the lowest limit this run has seen
        self.in_flight = 0
        self.epoch = 0  # bumped by every cut
        self.cuts = 0
        self._successes = 0  # since the last change of the limit

    def has_room(self) -> bool:
        """Whether one more request may be sent now."""
        return self.in_flight < self.limit

    def start(self) -> int:
        """Count a request as sent; its epoch, to hand back when it ends."""
        self.in_flight += 1
        return self.epoch

    def succeeded(self) -> None:
        """A request got its answer: one step towards a higher limit."""
        self.in_flight -= 1
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0

    def cut(self) -> None:
        """Halve the limit (at least 1)."""
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.epoch += 1
        self.cuts += 1
        self._successes = 0

    def overloaded(self, epoch: int) -> bool:
        """A request sent in ``epoch`` failed for overload; whether this cut the limit."""
        self.in_flight -= 1
        if epoch != self.epoch:  # sent before the last cut: that cut was the reaction to this burst
            return False
        self.cut()
        return True

    def failed(self) -> None:
        """A request ended without an answer for a reason that says nothing about load."""
        self.in_flight -= 1


@dataclass
class ServerLoad:
    """What the transport knows of one server: its limit, its patience, when it last answered."""

    limit: AdaptiveLimit
    patience: float  # seconds it may answer nothing, with requests waiting, before it counts as stalled
    heard: float = -math.inf  # time.monotonic() of its last answer
    stalled_at: float = -math.inf  # of its last stall
    stalls: int = 0
    down_until: float = 0.0  # it refused a connection: skipped until then while another server is up

    def quiet_since(self, sent: float) -> float:
        """Since when a request sent at ``sent`` has waited with no news: no answer, no stall."""
        return max(sent, self.heard, self.stalled_at)

    def stall(self, now: float, longest: float) -> None:
        """It answered nothing for ``patience`` seconds: halve its limit, double its patience (to ``longest``)."""
        self.limit.cut()
        self.patience = min(2 * self.patience, longest)
        self.stalled_at = now
        self.stalls += 1


@dataclass(frozen=True)
class TransportStatus:
    """A snapshot of the transport, for the progress line: limits in force, requests and retries so far."""

    limit: int  # requests allowed in flight now, all servers together
    maximum: int  # the configured limit, all servers together
    in_flight: int
    requests: int  # requests answered so far
    retries: int  # failed attempts that were tried again
    stalls: int = 0  # times a server answered nothing for its patience

    def __str__(self) -> str:
        text = f"concurrency {self.limit}/{self.maximum}"
        if self.retries:
            text += f", {self.retries} {'retry' if self.retries == 1 else 'retries'}"
        if self.stalls:
            text += f", {self.stalls} {'stall' if self.stalls == 1 else 'stalls'}"
        return text
