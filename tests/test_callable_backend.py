"""The callable backend: a function messages -> str evaluated like any model."""

from __future__ import annotations

import threading
import time

import pytest

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends import backend_class
from chattasks.eval.backends.base import Backend, GenerationConfig
from chattasks.eval.backends.callable import CallableBackend, function_label

PROMPT = [{"role": "user", "content": "Which is a mammal? - trout=A - whale=B"}]


def whale(messages):
    return "B"


def test_it_is_a_backend_and_registered_by_name():
    assert isinstance(CallableBackend(whale), Backend)
    assert backend_class("callable") is CallableBackend


def test_describe_names_the_function():
    backend = CallableBackend(whale)
    assert backend.describe() == {"backend": "callable", "model": f"{__name__}.whale", "concurrency": 1}
    assert CallableBackend(whale, label="my-model").describe()["model"] == "my-model"
    assert function_label(len) == "builtins.len"


def test_generate_calls_the_function_once_per_sample():
    calls = []

    def counting(messages):
        calls.append(messages[-1]["content"])
        return f"reply {len(calls)}"

    replies = CallableBackend(counting).generate(
        [PROMPT, [{"role": "user", "content": "2+2?"}]],
        GenerationConfig(max_new_tokens=5, temperature=1.0, num_samples=3),
    )
    assert replies == [["reply 1", "reply 2", "reply 3"], ["reply 4", "reply 5", "reply 6"]]
    assert calls == [PROMPT[0]["content"]] * 3 + ["2+2?"] * 3


def test_letter_scores_parse_the_reply():
    backend = CallableBackend(lambda messages: "I'd say B.")
    [scores] = backend.letter_scores([PROMPT], [["A", "B"]])
    assert scores.method == "completion" and scores.scores == {"B": 0.0} and scores.best() == "B"
    [none] = CallableBackend(lambda messages: "no idea").letter_scores([PROMPT], [["A", "B"]])
    assert none.scores == {} and none.best() is None


def test_loglikelihoods_are_not_supported():
    with pytest.raises(NotSupported, match="cannot score log-likelihoods"):
        CallableBackend(whale).loglikelihoods(["Question: ?\nAnswer:"], [[" yes", " no"]])


def test_the_function_gets_a_copy_of_the_messages():
    def vandal(messages):
        messages[0]["content"] = "changed"
        messages.append({"role": "assistant", "content": "x"})
        return "A"

    prompt = [{"role": "user", "content": "original"}]
    CallableBackend(vandal).generate([prompt], GenerationConfig(max_new_tokens=1))
    assert prompt == [{"role": "user", "content": "original"}]


def test_a_reply_that_is_not_text_is_a_backend_error():
    with pytest.raises(BackendError, match="returned a int, expected str"):
        CallableBackend(lambda messages: 3).generate([PROMPT], GenerationConfig(max_new_tokens=1))  # type: ignore[arg-type,return-value]


def test_concurrency_runs_calls_in_parallel_and_keeps_order():
    active, peak, lock = [0], [0], threading.Lock()

    def slow(messages):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return messages[-1]["content"].upper()

    backend = CallableBackend(slow, concurrency=4)
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    started = time.perf_counter()
    replies = backend.generate(prompts, GenerationConfig(max_new_tokens=1))
    elapsed = time.perf_counter() - started
    backend.close()
    assert replies == [[f"Q{i}"] for i in range(8)]
    assert peak[0] > 1 and elapsed < 8 * 0.05


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_concurrency_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="concurrency"):
        CallableBackend(whale, concurrency=bad)


def test_it_needs_a_function():
    with pytest.raises(TypeError, match="messages -> str"):
        CallableBackend("gpt-4")  # type: ignore[arg-type]
