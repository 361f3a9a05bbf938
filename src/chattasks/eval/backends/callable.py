"""A backend made of a Python function ``messages -> str``: the library's simplest way in.

    >>> from chattasks.eval.backends.callable import CallableBackend
    >>> backend = CallableBackend(lambda messages: "B")
    >>> backend.letter_scores([[{"role": "user", "content": "?"}]], [["A", "B"]])[0].best()
    'B'

``generate`` calls the function once per sample; ``letter_scores`` asks for one reply and reads
its letter with ``chattasks.tasks.multiple_choice.parse_letter`` from the reply's answer, its
``<think>`` reasoning left out (method ``"completion"``; a reply naming no letter gives empty
scores); ``loglikelihoods`` is not supported. With ``concurrency > 1`` the calls of a batch run
in a thread pool (useful when the function waits on a server); results always come back in input
order. The function gets a copy of the messages, never the task's own.

The function answers with a string, or a ``Completion`` when it knows more (a separate reasoning,
a finish reason, a token count). A function with a ``tools`` parameter can call tools: when the
calculator is offered it is called as ``fn(messages, tools=[CALCULATOR_SCHEMA])`` and may answer
with an assistant message ``{"content": ..., "tool_calls": [...]}`` (the chat API's shape, or
``{"name": ..., "arguments": ...}`` entries); each call is run and answered with a ``tool``
message and the function is called again (``eval.tool_chat``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends.base import BackendOption, Completion, GenerationConfig, LetterScores, Messages
from chattasks.eval.reasoning import split_reasoning
from chattasks.tasks.multiple_choice import parse_letter
from chattasks.tools.calls import CALCULATOR_SCHEMA


class CallableBackend:
    """Evaluate a Python function that answers a chat (a list of messages) with a string."""

    name = "callable"
    OPTIONS = (
        BackendOption("concurrency", int, "callable: calls of the function at once.", operational=True),
        BackendOption("label", str, "callable: the name results.json gives the function."),
    )

    def __init__(
        self,
        fn: Callable[..., str | Completion | dict[str, Any]],
        *,
        concurrency: int = 1,
        label: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallableBackend needs a function messages -> str, got {type(fn).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        self.fn = fn
        self.concurrency = concurrency
        self.label = label or function_label(fn)
        self.takes_tools = _takes_tools(fn)
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        """The backend name and the function's import path (or the given label)."""
        return {"backend": self.name, "model": self.label, "concurrency": self.concurrency}

    def _call(self, messages: Messages) -> str | Completion:
        reply = self.fn(copy.deepcopy(messages))
        if not isinstance(reply, str | Completion):
            raise BackendError(f"{self.label} returned a {type(reply).__name__}, expected str or Completion")
        return reply

    def _call_with_tools(self, messages: Messages, max_new_tokens: int) -> Completion:
        from chattasks.eval.tool_chat import ToolConversation, openai_calls

        conversation = ToolConversation(messages, max_new_tokens=max_new_tokens)
        while True:
            reply = self.fn(copy.deepcopy(conversation.messages), tools=[copy.deepcopy(CALCULATOR_SCHEMA)])
            if isinstance(reply, Mapping):
                text, calls = reply.get("content"), openai_calls(reply)
                completion = Completion(text if isinstance(text, str) else "", reply.get("reasoning_content"))
            elif isinstance(reply, str | Completion):
                completion, calls = Completion.of(reply), []
            else:
                raise BackendError(
                    f"{self.label} returned a {type(reply).__name__}, expected str, Completion or a message dict"
                )
            more = conversation.add_turn(
                completion.text,
                calls,
                reasoning=completion.reasoning,
                finish_reason=completion.finish_reason,
                tokens=completion.tokens,
            )
            if not more:
                return conversation.completion()

    def _map(self, call: Callable[[Messages], Any], calls: list[Messages]) -> list[Any]:
        if self.concurrency == 1 or len(calls) < 2:
            return [call(messages) for messages in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="chattasks-callable")
        return list(self._pool.map(call, calls))

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[str | Completion]]:
        """``config.num_samples`` calls of the function per prompt (decoding settings are the function's);
        with the calculator offered (``config.tools``) and a function that takes ``tools``, a tool
        conversation per sample."""
        if config.tools == "calculator" and not self.takes_tools:
            raise BackendError(
                f"{self.label} has no tools parameter, so it cannot call the calculator: use --tools none "
                "or give the function a tools= keyword"
            )
        calls = [list(prompt) for prompt in prompts for _ in range(config.num_samples)]
        if config.tools != "none" and self.takes_tools:
            replies = self._map(
                lambda messages: self._call_with_tools(messages, config.max_new_tokens), calls
            )
        else:
            replies = self._map(self._call, calls)
        n = config.num_samples
        return [replies[i * n : (i + 1) * n] for i in range(len(prompts))]

    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """One reply per prompt, its letter parsed: ``{letter: 0.0}``, or ``{}`` when it names none."""
        if len(prompts) != len(letters):
            raise ValueError(f"got {len(prompts)} prompts but {len(letters)} letter lists")
        replies = self._map(self._call, [list(prompt) for prompt in prompts])
        results = []
        for reply, candidates in zip(replies, letters):
            letter = parse_letter(split_reasoning(Completion.of(reply).text).answer, candidates)
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


def _takes_tools(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` has a ``tools`` parameter (so it can be offered tools)."""
    try:
        return "tools" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def function_label(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (a stable name for run.json), else its type's name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}" if module else qualname
