"""Adaptive concurrency of the openai backend: the AIMD rule, then real overloaded servers on loopback.

The servers are ``tests/openai_server.py`` in capacity mode: the model works on a few requests
at a time and the rest queue (as with ``transformers serve``, which then stalls past the
timeout) or are refused with 429/503. Every run must end with every answer right; the limits
the backend reports must show that it backed off and, once the server is fast again, grew back.
Budget: ~15 s.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from openai_server import FakeOpenAIServer, first_attempts, mc_answer

from chattasks.errors import BackendError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.backends.openai import OpenAIBackend
from chattasks.eval.backends.openai_limit import AdaptiveLimit, ServerLoad, TransportStatus


def chats(n: int, start: int = 0) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"item {i}"}] for i in range(start, start + n)]


def replies(n: int, start: int = 0) -> list[list[str]]:
    return [[f"You said: item {i}"] for i in range(start, start + n)]


def texts(replies) -> list[list[str]]:
    """The texts of ``generate``'s Completions."""
    return [[reply.text for reply in samples] for samples in replies]


def backend(*servers: FakeOpenAIServer, **kwargs) -> OpenAIBackend:
    options = {"concurrency": 8, "timeout": 0.25, "backoff": 0.001, **kwargs}
    return OpenAIBackend("fake-model", base_urls=[s.url for s in servers], **options)


# ---- the rule -------------------------------------------------------------------------------


def test_the_limit_starts_at_the_maximum_and_one_burst_of_overload_halves_it_once():
    limit = AdaptiveLimit(16)
    epochs = [limit.start() for _ in range(16)]
    assert (limit.limit, limit.has_room()) == (16, False)
    assert limit.overloaded(epochs[0]) is True
    assert [limit.overloaded(e) for e in epochs[1:10]] == [False] * 9  # the same burst: no second cut
    assert (limit.limit, limit.in_flight, limit.cuts) == (8, 6, 1)
    assert limit.has_room()  # six of the new eight
    limit.start()
    limit.start()
    assert not limit.has_room()  # a retry now waits until fewer than 8 are in flight
    for _ in range(8):
        limit.failed()
    assert limit.overloaded(limit.start()) is True  # sent after the cut: it cuts again
    assert (limit.limit, limit.lowest) == (4, 4)


def test_the_limit_never_drops_below_one_and_grows_by_one_per_window_of_successes():
    limit = AdaptiveLimit(4)
    for _ in range(5):
        limit.overloaded(limit.start())
    assert (limit.limit, limit.lowest, limit.cuts) == (1, 1, 5)
    grown = []
    for _ in range(1 + 2 + 3 + 5):  # windows of 1, 2 and 3 successes raise it to 4; then it stays
        limit.start()
        limit.succeeded()
        grown.append(limit.limit)
    assert grown == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4]
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        AdaptiveLimit(0)


def test_a_stall_halves_the_limit_and_doubles_the_patience_up_to_give_up_after():
    server = ServerLoad(AdaptiveLimit(16), patience=60.0)
    assert server.quiet_since(sent=5.0) == 5.0  # never heard from: quiet since the request was sent
    server.heard = 7.0
    assert server.quiet_since(sent=5.0) == 7.0
    for now in (100.0, 300.0, 700.0):
        server.stall(now, longest=200.0)
    assert (server.limit.limit, server.patience, server.stalls) == (2, 200.0, 3)
    assert server.quiet_since(sent=5.0) == 700.0  # a stall restarts the wait for the next one


def test_the_status_line_shows_the_limit_and_the_retries():
    assert str(TransportStatus(4, 16, 3, 10, 0, 0)) == "concurrency 4/16"
    assert str(TransportStatus(4, 16, 3, 10, 5, 2)) == "concurrency 4/16, 5 retries, 2 stalls"
    assert str(TransportStatus(16, 16, 0, 10, 1, 1)) == "concurrency 16/16, 1 retry, 1 stall"


# ---- overloaded servers -----------------------------------------------------------------------


def test_a_slow_server_stalls_the_limit_drops_and_every_question_is_sent_once():
    # one request at a time, 0.3 s each, and a 0.1 s timeout: the server stalls (patience 0.1 ->
    # 0.2 -> 0.4 s, past its 0.3 s per answer), the limit falls from 8, and the requests already
    # sent keep their place in its queue instead of being sent again
    with FakeOpenAIServer(capacity=1, service_seconds=0.3) as fake:
        with backend(fake, timeout=0.1) as b:
            got = texts(b.generate(chats(5), GenerationConfig(max_new_tokens=4)))
            slow = b.describe()
            fake.capacity = None  # the server is fast again
            more = texts(b.generate(chats(40, start=5), GenerationConfig(max_new_tokens=4)))
            fast = b.describe()
            status = b.status()
    assert got == replies(5) and more == replies(40, start=5)
    server = slow["servers"][fake.url]
    assert server["stalls"] >= 2 and server["limit_lowest"] <= 2 and server["patience_final"] >= 0.4
    assert len(fake.bodies) == 1 + 5 + 40  # the probe, then every question once: nothing sent twice
    assert slow["retries"] == {}
    assert fast["servers"][fake.url]["limit_final"] == 8  # 2 + 3 + ... + 7 successes bring it back
    assert (status.limit, status.maximum, status.in_flight, status.requests) == (8, 8, 0, 46)
    assert str(status).startswith(f"concurrency 8/8, {server['stalls']} stall")


@pytest.mark.parametrize("refusal", ["429", "503"])
def test_a_server_refusing_when_full_gets_fewer_requests_and_every_answer(refusal):
    with FakeOpenAIServer(capacity=2, service_seconds=0.02, when_full=refusal) as fake:
        with backend(fake, max_retries=0) as b:  # busy answers do not use up retries
            got = texts(b.generate(chats(40), GenerationConfig(max_new_tokens=4)))
            info = b.describe()
    assert got == replies(40)
    assert info["retries"]["busy"] == fake.refused_full >= 1
    assert info["servers"][fake.url]["limit_lowest"] <= 2
    # at the full limit of 8 every wave would lose 6 of 8 requests; cut to the server's size it loses few
    assert fake.refused_full < 40


def test_a_server_that_answered_and_then_went_silent_ends_the_run_after_give_up_after():
    silent = first_attempts(["slow"], times=10**6)  # every request after the probe hangs for 5 s
    with FakeOpenAIServer(slow_seconds=5.0) as fake, backend(fake, timeout=0.25, give_up_after=1.0) as b:
        texts(b.generate(chats(1), GenerationConfig(max_new_tokens=4)))
        fake.faults = silent
        with pytest.raises(BackendError) as caught:
            texts(b.generate(chats(3, start=1), GenerationConfig(max_new_tokens=4)))
    message = str(caught.value)
    assert "\n" not in message and fake.url in message and "for 1 s" in message and "--resume" in message


def test_a_server_restarted_within_give_up_after_lets_the_run_go_on():
    with FakeOpenAIServer() as first:
        url, port = first.url, first.httpd.server_address[1]
        b = OpenAIBackend("fake-model", base_urls=url, backoff=0.05, max_retries=0, give_up_after=30)
        assert texts(b.generate(chats(2), GenerationConfig(max_new_tokens=4))) == replies(2)
    restarted: list[FakeOpenAIServer] = []

    def restart() -> None:
        time.sleep(0.5)
        restarted.append(FakeOpenAIServer(port=port).__enter__())

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        # refused connections while it is down: not counted against max_retries=0, retried until it is back
        assert texts(b.generate(chats(4, start=2), GenerationConfig(max_new_tokens=4))) == replies(4, start=2)
        assert b.describe()["retries"]["connect"] >= 1
    finally:
        thread.join()
        b.close()
        for server in restarted:
            server.__exit__(None, None, None)


def test_a_server_gone_for_good_ends_the_run_with_one_line_after_give_up_after():
    with FakeOpenAIServer() as fake:
        b = OpenAIBackend("fake-model", base_urls=fake.url, backoff=0.05, max_retries=0, give_up_after=1.0)
        texts(b.generate(chats(1), GenerationConfig(max_new_tokens=4)))
    with b, pytest.raises(BackendError) as caught:
        texts(b.generate(chats(2), GenerationConfig(max_new_tokens=4)))
    message = str(caught.value)
    assert "\n" not in message and "for 1 s" in message and "cannot connect" in message


def test_a_wrong_url_fails_fast_instead_of_waiting_for_give_up_after():
    with FakeOpenAIServer() as fake:
        url = fake.url
    b = OpenAIBackend("fake-model", base_urls=url, backoff=0.001, max_retries=2, give_up_after=600)
    with b, pytest.raises(BackendError, match="after 3 attempts.*cannot connect"):
        texts(b.generate(chats(1), GenerationConfig(max_new_tokens=4)))


# ---- through the runner -------------------------------------------------------------------------


def test_an_evaluation_on_an_overloaded_server_completes_and_records_the_limits(hub_dir, tmp_path):
    from chattasks.eval.runner import evaluate_model
    from chattasks.tasks.arc import ARC

    rows = list(ARC("ARC-Easy", "test", data_dir=hub_dir)[:16])
    expected = sum(mc_answer(r["messages"][0]["content"]) == r["messages"][-1]["content"] for r in rows) / 16
    with FakeOpenAIServer(capacity=1, service_seconds=0.15) as fake:
        results = evaluate_model(
            "fake-model",
            ["ARC-Easy"],
            backend="openai",
            limit=16,
            output=tmp_path / "run",
            data_dir=hub_dir,
            progress=False,
            base_urls=[fake.url],
            concurrency=8,
            timeout=0.1,
            backoff=0.001,
        )
    summary = results.to_dict()["tasks"]["ARC-Easy"]
    assert (summary["samples"], summary["accuracy"], summary["methods"]) == (16, expected, {"logprobs": 16})
    model = json.loads((tmp_path / "run" / "results.json").read_text())["model"]
    server = model["servers"][fake.url]
    assert server["limit_lowest"] < 8 and server["stalls"] >= 1 and model["retries"] == {}
    assert model["capabilities"]["logprobs"] == "returned"
