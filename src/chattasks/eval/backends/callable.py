"""A backend made of a Python function ``messages -> str``: the library's simplest way in.

    >>> from chattasks.eval.backends.callable import CallableBackend
    >>> backend = CallableBackend(lambda messages: "B")
    >>> backend.letter_scores([[{"role": "user", "content": "?"}]], [["A", "B"]])[0].best()
    'B'

``generate`` calls the function once per sample; ``letter_scores`` asks for one reply and reads
its letter with ``chattasks.tasks.multiple_choice.parse_letter`` (method ``"completion"``; a reply naming
no letter gives empty scores); ``loglikelihoods`` is not supported. With ``concurrency > 1`` the
calls of a batch run in a thread pool (useful when the function waits on a server); results
always come back in input order. The function gets a copy of the messages, never the task's own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends.base import BackendOption, GenerationConfig, LetterScores, Messages
from chattasks.tasks.multiple_choice import parse_letter


class CallableBackend:
    """Evaluate a Python function that answers a chat (a list of messages) with a string."""

    name = "callable"
    OPTIONS = (
        BackendOption("concurrency", int, "callable: calls of the function at once.", operational=True),
        BackendOption("label", str, "callable: the name results.json gives the function."),
    )

    def __init__(
        self, fn: Callable[[Messages], str], *, concurrency: int = 1, label: str | None = None
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallableBackend needs a function messages -> str, got {type(fn).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        self.fn = fn
        self.concurrency = concurrency
        self.label = label or function_label(fn)
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        """The backend name and the function's import path (or the given label)."""
        return {"backend": self.name, "model": self.label, "concurrency": self.concurrency}

    def _call(self, messages: Messages) -> str:
        reply = self.fn(copy.deepcopy(messages))
        if not isinstance(reply, str):
            raise BackendError(f"{self.label} returned a {type(reply).__name__}, expected str")
        return reply

    def _map(self, calls: list[Messages]) -> list[str]:
        if self.concurrency == 1 or len(calls) < 2:
            return [self._call(messages) for messages in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="chattasks-callable")
        return list(self._pool.map(self._call, calls))

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[str]]:
        """``config.num_samples`` calls of the function per prompt (decoding settings are the function's)."""
        calls = [list(prompt) for prompt in prompts for _ in range(config.num_samples)]
        replies = self._map(calls)
        n = config.num_samples
        return [replies[i * n : (i + 1) * n] for i in range(len(prompts))]

    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """One reply per prompt, its letter parsed: ``{letter: 0.0}``, or ``{}`` when it names none."""
        if len(prompts) != len(letters):
            raise ValueError(f"got {len(prompts)} prompts but {len(letters)} letter lists")
        replies = self._map([list(prompt) for prompt in prompts])
        results = []
        for reply, candidates in zip(replies, letters):
            letter = parse_letter(reply, candidates)
            results.append(LetterScores({} if letter is None else {letter: 0.0}, "completion"))
        return results

    def loglikelihoods(
        self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
    ) -> list[list[tuple[float, int]]]:
        """Not supported: a function that returns text gives no probabilities."""
        raise NotSupported("a callable backend returns text only, so it cannot score log-likelihoods")

    def close(self) -> None:
        """Stop the thread pool, if one was started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def function_label(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (a stable name for run.json), else its type's name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}" if module else qualname
