"""The openai backend against a real loopback HTTP server that injects faults.

Every test talks HTTP to ``tests/openai_server.py`` on 127.0.0.1; the expected answers are the
fake model's rules recomputed here. Budget: the whole file runs in ~25 s (tiny backoff,
sub-second timeouts).
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time

import pytest
from openai_server import (
    FAULT_KINDS,
    FakeOpenAIServer,
    asked,
    chat_reply,
    continuation_logprob,
    first_attempts,
    is_probe,
    mc_answer,
    mc_logprobs,
)

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends import backend_class
from chattasks.eval.backends.base import Backend, GenerationConfig
from chattasks.eval.backends.openai import OpenAIBackend, retry_after_seconds, wire_messages
from chattasks.render import render_mc

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"

QUESTIONS = [
    ("Which gas do plants take in?", ["oxygen", "carbon dioxide", "helium", "neon"]),
    ("What melts ice fastest?", ["salt water at room temperature", "cold air", "shade", "snow"]),
    ("Which is a mammal?", ["shark", "trout", "dolphin", "eel"]),
    ("Which tool measures mass?", ["ruler", "balance", "thermometer", "stopwatch"]),
    ("What makes a shadow?", ["light blocked by an object", "sound", "wind", "heat"]),
    ("Which planet is largest?", ["Mars", "Venus", "Jupiter", "Mercury"]),
]


def mc_prompt(question: str, choices: list[str], letters: list[str] | None = None):
    letters = letters or ["A", "B", "C", "D"][: len(choices)]
    return [{"role": "user", "content": render_mc(question, letters, choices)}], letters


def backend(*servers_or_urls, **kwargs) -> OpenAIBackend:
    urls = [s if isinstance(s, str) else s.url for s in servers_or_urls]
    options = {"concurrency": 4, "timeout": 5.0, "max_retries": 6, "backoff": 0.001, **kwargs}
    return OpenAIBackend("fake-model", base_urls=urls, **options)


def texts(replies) -> list[list[str]]:
    """The texts of ``generate``'s Completions."""
    return [[reply.text for reply in samples] for samples in replies]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


# ---- the interface --------------------------------------------------------------------------


def test_is_a_registered_backend(server):
    with backend(server) as b:
        assert isinstance(b, Backend)
        assert b.name == "openai"
        assert backend_class("openai") is OpenAIBackend


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_urls": []}, "at least one server"),
        ({"base_urls": "localhost:8000"}, "http:// or https://"),
        ({"base_urls": "http://x/v1", "concurrency": 0}, "concurrency"),
        ({"base_urls": "http://x/v1", "timeout": 0}, "timeout"),
        ({"base_urls": "http://x/v1", "max_retries": -1}, "max_retries"),
        ({"base_urls": "http://x/v1", "top_logprobs": 0}, "top_logprobs"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OpenAIBackend("m", **kwargs)


def test_base_urls_follow_the_openai_client_convention():
    b = OpenAIBackend("m", base_urls="http://a:8000, http://b:8000/v1/, https://c.example/openai/v1")
    assert b.base_urls == ["http://a:8000/v1", "http://b:8000/v1", "https://c.example/openai/v1"]


def test_without_base_urls_the_environment_or_a_clear_error_names_the_server(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="pass --base-url"):
        OpenAIBackend("m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://a:1/v1,http://b:2/v1")
    assert OpenAIBackend("m").base_urls == ["http://a:1/v1", "http://b:2/v1"]


def test_describe_names_model_urls_and_concurrency_but_never_the_key(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    with backend(server, api_key_env="MY_KEY", concurrency=7) as b:
        info = b.describe()
    assert info["backend"] == "openai" and info["model"] == "fake-model"
    assert info["base_urls"] == [server.url] and info["concurrency"] == 7
    assert "sk-secret-123" not in repr(info)


def test_api_key_comes_from_the_environment_variable(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    with backend(server, api_key_env="MY_KEY") as b:
        b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=4))
    monkeypatch.delenv("MY_KEY")
    with backend(server, api_key_env="MY_KEY") as b:
        b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=4))
    # each backend probes the server once, then asks its question
    assert server.authorization == ["Bearer sk-secret-123"] * 2 + [None] * 2


def test_assistant_parts_are_sent_as_plain_text():
    messages = [
        {"role": "user", "content": "2+2?"},
        {
            "role": "assistant",
            "content": [{"type": "python", "text": "2+2"}, {"type": "python_output", "text": "4"}],
        },
        {"role": "user", "content": "and?"},
    ]
    assert wire_messages(messages)[1] == {"role": "assistant", "content": "2+24"}


# ---- probing what the server accepts -----------------------------------------------------------


def test_the_server_is_probed_once_and_what_it_accepts_is_recorded(server):
    prompts, letters = zip(*(mc_prompt(q, c) for q, c in QUESTIONS))
    with backend(server) as b:
        assert b.describe()["capabilities"]["chat"] is None  # nothing asked before it is needed
        threads = [threading.Thread(target=b.letter_scores, args=(prompts, letters)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        info = b.describe()
    probes = [body for _, body in server.bodies if is_probe(body)]
    # one chat probe for four concurrent callers; the echo probe, then max_tokens=0 asked once
    assert [body.get("max_tokens") for body in probes] == [1, 1, 0]
    assert info["capabilities"] == {
        "chat": True,
        "logprobs": "returned",
        "top_logprobs": 1,  # the fake model offers one alternative outside multiple choice
        "n": None,
        "echo": "returned",
        "echo_detail": None,
        "prompt_lists": True,
        "max_tokens_zero": True,
    }
    assert info["logprobs_supported"] is True


def test_a_server_taking_one_prompt_at_a_time_gets_one_request_per_text():
    with FakeOpenAIServer(prompt_lists=False) as fake, backend(fake) as b:
        results = b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        assert b.describe()["capabilities"]["prompt_lists"] is False
    expected = [[continuation_logprob(c, x) for x in xs] for c, xs in zip(CONTEXTS, CONTINUATIONS)]
    assert [s for r in results for s, _ in r] == pytest.approx([s for r in expected for s, _ in r])
    assert all(isinstance(body["prompt"], str) for body in asked(fake, COMPLETIONS))
    assert len(asked(fake, COMPLETIONS)) == sum(1 + len(xs) for xs in CONTINUATIONS)


def test_a_wrong_model_name_fails_at_the_probe_with_the_servers_words(server):
    b = OpenAIBackend("no-such-model", base_urls=server.url, backoff=0.001)
    prompt, letters = mc_prompt(*QUESTIONS[0])
    with b, pytest.raises(BackendError, match="does not exist.*check --model"):
        b.letter_scores([prompt], [letters])
    assert len(server.bodies) == 1 and b.describe()["capabilities"]["chat"] is None


# ---- letter scores --------------------------------------------------------------------------


def test_letter_scores_come_from_top_logprobs(server):
    prompts, letters = zip(*(mc_prompt(q, c) for q, c in QUESTIONS))
    with backend(server) as b:
        results = b.letter_scores(prompts, letters)
    for prompt, result in zip(prompts, results):
        content = prompt[0]["content"]
        assert result.method == "logprobs"
        assert result.best() == mc_answer(content)
        assert result.scores == {t: lp for t, lp in mc_logprobs(content) if t in "ABCD"}
    body = asked(server, CHAT)[0]
    assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (
        1,
        0,
        True,
        20,
    )


def test_letters_missing_from_top_logprobs_score_minus_inf(server):
    prompt, letters = mc_prompt(*QUESTIONS[2])
    with backend(server, top_logprobs=2) as b:
        (result,) = b.letter_scores([prompt], [letters])
    assert result.best() == "C"
    assert sorted(result.scores.values())[:2] == [-math.inf, -math.inf]


def test_numeric_letters_of_real_arc_rows_are_scored(hub_dir):
    from chattasks.tasks.arc import ARC

    task = ARC("ARC-Easy", "test", data_dir=hub_dir)
    conversations = [task[i] for i in range(12)]
    prompts = [c["messages"][:-1] for c in conversations]
    with FakeOpenAIServer(faults=first_attempts(["500", "reset", "cut_json"])) as fake, backend(fake) as b:
        scores = b.letter_scores(prompts, [c["letters"] for c in conversations])
        replies = b.generate(prompts, GenerationConfig(max_new_tokens=1))
    for conversation, result, (reply,) in zip(conversations, scores, replies):
        expected = mc_answer(conversation["messages"][0]["content"])
        assert result.best() == expected == reply.text
        assert task.evaluate(conversation, reply.text) == int(
            expected == conversation["messages"][-1]["content"]
        )


def test_without_logprobs_the_one_token_reply_is_parsed_and_the_method_recorded():
    prompts, letters = zip(*(mc_prompt(q, c) for q, c in QUESTIONS))
    with FakeOpenAIServer(logprobs=False) as fake, backend(fake) as b:
        first = b.letter_scores(prompts[:2], letters[:2])
        asked_before = len(asked(fake, CHAT))
        rest = b.letter_scores(prompts[2:], letters[2:])
        assert b.describe()["logprobs_supported"] is False
    for prompt, result in zip(prompts, first + rest):
        answer = mc_answer(prompt[0]["content"])
        assert result.method == "completion"
        assert result.scores[answer] == 0.0 and result.best() == answer
        assert sorted(result.scores.values()) == [-math.inf] * 3 + [0.0]
    assert all("logprobs" not in body for body in asked(fake, CHAT))  # the probe found none: never asked
    assert asked_before == 2 and len(fake.requests_to(CHAT)) == len(QUESTIONS) + 1  # probed once


def test_a_server_rejecting_logprobs_falls_back_to_the_reply():
    prompt, letters = mc_prompt(*QUESTIONS[0])
    with FakeOpenAIServer(reject_logprobs=True) as fake, backend(fake) as b:
        (result,) = b.letter_scores([prompt], [letters])
    assert result.method == "completion" and result.best() == "B"


def test_a_reply_that_is_no_letter_gives_no_scores():
    prompt = [{"role": "user", "content": "Say something."}]
    with FakeOpenAIServer(logprobs=False) as fake, backend(fake) as b:
        (result,) = b.letter_scores([prompt], [["A", "B"]])
    assert result.scores == {} and result.best() is None


# ---- generation -----------------------------------------------------------------------------


def test_greedy_generation_keeps_order_and_sends_the_settings(server):
    prompts = [[{"role": "user", "content": f"question {i} is here"}] for i in range(10)]
    with backend(server) as b:
        replies = b.generate(prompts, GenerationConfig(max_new_tokens=4, seed=7))
    assert texts(replies) == [[f"You said: question {i}"] for i in range(10)]
    body = asked(server, CHAT)[0]
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (4, 0.0, 7)
    assert "top_k" not in body and "n" not in body


def test_sampling_asks_for_n_samples_with_top_k(server):
    config = GenerationConfig(max_new_tokens=50, temperature=0.8, top_k=40, num_samples=3, seed=5)
    with backend(server) as b:
        (replies,) = b.generate([[{"role": "user", "content": "hi"}]], config)
    expected = [
        chat_reply("hi", max_tokens=50, temperature=0.8, top_k=40, seed=5, sample=i) for i in range(3)
    ]
    assert [r.text for r in replies] == expected
    assert len(asked(server, CHAT)) == 1 and asked(server, CHAT)[0]["n"] == 3


@pytest.mark.parametrize("server_kwargs", [{"honour_n": False}, {"reject_n": True}])
def test_a_server_ignoring_or_rejecting_n_is_asked_once_per_sample(server_kwargs):
    config = GenerationConfig(max_new_tokens=50, temperature=1.0, num_samples=3, seed=5)
    with FakeOpenAIServer(**server_kwargs) as fake, backend(fake) as b:
        (replies,) = b.generate([[{"role": "user", "content": "hi"}]], config)
        (again,) = b.generate([[{"role": "user", "content": "yo"}]], config)
        assert b.describe()["capabilities"]["n"] == ("ignored" if "honour_n" in server_kwargs else "refused")
    assert len(replies) == len(again) == 3
    assert [r.text.split("seed=")[1].split(" ")[0] for r in replies] == ["5", "6", "7"]
    assert all("n" not in body for body in asked(fake, CHAT))  # probed once: n is never asked


def test_a_server_rejecting_top_k_says_to_leave_it_unset():
    config = GenerationConfig(temperature=0.7, top_k=20)
    with FakeOpenAIServer(reject_top_k=True) as fake, backend(fake) as b:
        with pytest.raises(BackendError, match="top_k.*leave --top-k unset"):
            b.generate([[{"role": "user", "content": "hi"}]], config)


# ---- log-likelihoods ------------------------------------------------------------------------

CONTEXTS = ["Question: Which gas do plants take in?\nAnswer:", "Question: Which is a mammal?\nAnswer: "]
CONTINUATIONS = [[" oxygen", " carbon dioxide", " helium"], ["shark", "bottlenose dolphin"]]


def test_loglikelihoods_sum_the_continuation_tokens_after_the_context(server):
    with backend(server) as b:
        results = b.loglikelihoods(CONTEXTS, CONTINUATIONS)
    expected = [[continuation_logprob(c, x) for x in xs] for c, xs in zip(CONTEXTS, CONTINUATIONS)]
    assert [[(round(s, 9), n) for s, n in r] for r in results] == [
        [(round(s, 9), n) for s, n in r] for r in expected
    ]
    assert [n for _, n in results[0]] == [1, 2, 1]
    bodies = asked(server, COMPLETIONS)
    assert len(bodies) == 2  # one request per context, the context alone first
    firsts = sorted(body["prompt"][0] for body in bodies)  # requests arrive in any order
    assert firsts == sorted([CONTEXTS[0], CONTEXTS[1].rstrip()])
    assert (bodies[0]["echo"], bodies[0]["logprobs"], bodies[0]["max_tokens"]) == (True, 1, 0)


def test_loglikelihoods_drop_the_generated_token_where_max_tokens_must_be_positive():
    with FakeOpenAIServer(zero_max_tokens=False) as fake, backend(fake) as b:
        results = b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        assert b.describe()["capabilities"]["max_tokens_zero"] is False
        assert {body["max_tokens"] for body in asked(fake, COMPLETIONS)} == {1}
    expected = [[continuation_logprob(c, x) for x in xs] for c, xs in zip(CONTEXTS, CONTINUATIONS)]
    assert [s for r in results for s, _ in r] == pytest.approx([s for r in expected for s, _ in r])
    assert [n for r in results for _, n in r] == [n for r in expected for _, n in r]


def test_loglikelihoods_without_echo_are_not_supported_and_remembered():
    with FakeOpenAIServer(echo=False) as fake, backend(fake) as b:
        with pytest.raises(NotSupported, match="echo"):
            b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        asked = len(fake.bodies)
        with pytest.raises(NotSupported):
            b.loglikelihoods(CONTEXTS, CONTINUATIONS)
        assert len(fake.bodies) == asked


def test_an_empty_context_is_refused_before_any_request(server):
    with backend(server) as b, pytest.raises(ValueError, match="context 1 is empty"):
        b.loglikelihoods(["Question: x\nAnswer:", "  "], [[" a"], [" b"]])
    assert server.bodies == []


# ---- faults ---------------------------------------------------------------------------------


def test_every_sample_completes_correctly_despite_every_kind_of_fault():
    prompts, letters = zip(*(mc_prompt(q, c) for q, c in QUESTIONS))
    chats = [[{"role": "user", "content": f"tell me about item {i}"}] for i in range(12)]
    config = GenerationConfig(max_new_tokens=6)
    with FakeOpenAIServer() as clean, backend(clean) as b:
        want = (
            b.letter_scores(prompts, letters),
            b.generate(chats, config),
            b.loglikelihoods(CONTEXTS, CONTINUATIONS),
        )
    # "slow" last: a slow answer is waited for (it is no failure), so it ends a request's run of faults
    kinds = [kind for kind in FAULT_KINDS if kind != "slow"] + ["slow"]
    slow = {"faults": first_attempts(kinds, times=2), "slow_seconds": 1.0}
    with FakeOpenAIServer(**slow) as one, FakeOpenAIServer(**slow) as two:
        # each request meets up to four faults (two per server) before its answer
        with backend(one, two, timeout=0.5, concurrency=8, max_retries=10) as b:
            got = (
                b.letter_scores(prompts, letters),
                b.generate(chats, config),
                b.loglikelihoods(CONTEXTS, CONTINUATIONS),
            )
        injected = one.fault_counts + two.fault_counts
    assert got == want
    assert set(injected) == set(FAULT_KINDS), injected


def test_retry_after_is_honoured():
    faults = first_attempts(["429"])
    with FakeOpenAIServer(faults=faults, retry_after="1") as fake, backend(fake) as b:
        start = time.monotonic()
        assert texts(
            b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=2))
        ) == [["You said:"]]
        assert time.monotonic() - start >= 1.0
        assert len(asked(fake, CHAT)) == 2  # the probe met a 429 too


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


def test_a_server_that_keeps_failing_gives_a_one_line_error():
    with FakeOpenAIServer(faults=lambda request: "500") as fake, backend(fake, max_retries=3) as b:
        with pytest.raises(BackendError) as info:
            b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=2))
    assert len(fake.bodies) == 4
    assert (
        "\n" not in str(info.value)
        and "after 4 attempts" in str(info.value)
        and "HTTP 500" in str(info.value)
    )


def test_an_unreachable_server_gives_a_one_line_error_naming_the_url():
    url = closed_port_url()
    with backend(url, max_retries=2) as b, pytest.raises(BackendError) as info:
        b.letter_scores(*zip(mc_prompt(*QUESTIONS[0])))
    message = str(info.value)
    assert "\n" not in message and url in message and "cannot connect" in message and "--base-url" in message


def test_a_non_retryable_error_carries_the_servers_message_at_once(server):
    b = OpenAIBackend("no-such-model", base_urls=server.url, backoff=0.001)
    with b, pytest.raises(BackendError, match="model `no-such-model` does not exist.*check --model"):
        b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=2))
    assert len(server.bodies) == 1


def test_a_bad_request_is_not_retried():
    with FakeOpenAIServer(faults=lambda request: "400") as fake, backend(fake) as b:
        with pytest.raises(BackendError, match="HTTP 400: injected fault 400"):
            b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=2))
    assert len(fake.bodies) == 2  # the probe, then the probe without logprobs: each once


# ---- spreading and concurrency --------------------------------------------------------------


def test_requests_are_spread_round_robin_over_the_base_urls():
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(20)]
    with FakeOpenAIServer() as one, FakeOpenAIServer() as two, backend(one, two, concurrency=10) as b:
        replies = b.generate(chats, GenerationConfig(max_new_tokens=3))
    assert texts(replies) == [[f"You said: n{i}"] for i in range(20)]
    assert len(asked(one, CHAT)) == len(asked(two, CHAT)) == 10


def test_a_server_without_room_leaves_the_requests_to_one_with_room():
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(24)]
    with FakeOpenAIServer(delay=0.3) as slow, FakeOpenAIServer() as fast:
        with backend(slow, fast, concurrency=2) as b:
            replies = b.generate(chats, GenerationConfig(max_new_tokens=3))
    assert texts(replies) == [[f"You said: n{i}"] for i in range(24)]
    assert slow.max_in_flight <= 2 and fast.max_in_flight <= 2  # the limit holds per server
    assert len(asked(fast, CHAT)) > len(asked(slow, CHAT))  # the fast server took the larger share


def test_a_dead_url_fails_over_to_a_live_one():
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(20)]
    with FakeOpenAIServer() as live, backend(closed_port_url(), live, max_retries=1, backoff=5.0) as b:
        start = time.monotonic()
        replies = b.generate(chats, GenerationConfig(max_new_tokens=3))
    assert texts(replies) == [[f"You said: n{i}"] for i in range(20)]
    assert len(asked(live, CHAT)) == 20
    assert time.monotonic() - start < 5.0  # failing over needs no backoff


def test_a_server_that_hangs_gets_its_requests_moved_to_one_that_answers():
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(6)]
    hang = first_attempts(["slow"], times=10**6)
    with FakeOpenAIServer(faults=hang, slow_seconds=3.0) as hung, FakeOpenAIServer() as live:
        with backend(hung, live, timeout=0.2, give_up_after=0.8) as b:
            replies = b.generate(chats, GenerationConfig(max_new_tokens=3))
            info = b.describe()
    assert texts(replies) == [[f"You said: n{i}"] for i in range(6)]
    assert info["retries"]["silent"] >= 1 and info["servers"][hung.url]["limit_lowest"] < 4


def test_the_concurrency_limit_is_respected():
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(24)]
    with FakeOpenAIServer(delay=0.05) as fake, backend(fake, concurrency=3) as b:
        b.generate(chats, GenerationConfig(max_new_tokens=3))
    assert fake.max_in_flight == 3


# ---- threads, loops and closing ---------------------------------------------------------------


def test_works_inside_a_running_event_loop_and_from_other_threads(server):
    chat = [[{"role": "user", "content": "hi there"}]]
    config = GenerationConfig(max_new_tokens=3)
    with backend(server) as b:

        async def inside_a_loop():
            return b.generate(chat, config)

        assert texts(asyncio.run(inside_a_loop())) == [["You said: hi"]]
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(b.generate(chat, config))) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [texts(result) for result in results] == [[["You said: hi"]]] * 3


def test_close_stops_the_loop_thread_and_a_later_call_restarts_it(server):
    b = backend(server)
    assert b.generate([], GenerationConfig()) == []
    b.generate([[{"role": "user", "content": "a b"}]], GenerationConfig(max_new_tokens=3))
    loop_thread = b._transport.loop.thread
    b.close()
    b.close()
    assert not loop_thread.is_alive()
    assert texts(b.generate([[{"role": "user", "content": "a b"}]], GenerationConfig(max_new_tokens=3))) == [
        ["You said: a"]
    ]
    b.close()


# ---- through the runner ---------------------------------------------------------------------


def test_evaluate_model_scores_real_arc_rows_through_a_faulty_server(hub_dir, tmp_path):
    from chattasks.eval.runner import evaluate_model
    from chattasks.tasks.arc import ARC

    conversations = list(ARC("ARC-Easy", "test", data_dir=hub_dir)[:16])
    expected = sum(
        mc_answer(c["messages"][0]["content"]) == c["messages"][-1]["content"] for c in conversations
    ) / len(conversations)
    with (
        FakeOpenAIServer(faults=first_attempts(["500", "reset", "cut_json"])) as one,
        FakeOpenAIServer() as two,
    ):
        results = evaluate_model(
            "fake-model",
            ["ARC-Easy"],
            backend="openai",
            limit=16,
            output=tmp_path / "run",
            data_dir=hub_dir,
            progress=False,
            base_urls=[one.url, two.url],
            backoff=0.001,
        )
    summary = results.to_dict()["tasks"]["ARC-Easy"]
    assert (summary["samples"], summary["accuracy"], summary["methods"]) == (16, expected, {"logprobs": 16})
    assert summary["failures"] == {}
