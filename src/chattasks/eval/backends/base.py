"""The one interface every model backend implements.

A backend answers three kinds of question, each for a whole batch at once (the runner batches;
a backend may split a batch further or run its items concurrently):

- ``letter_scores``: for chat prompts ending with a user message, a score (a log-probability or a
  logit; higher is likelier) for each candidate letter as the first token of the assistant's reply.
  This is nanochat's categorical evaluation.
- ``loglikelihoods``: for plain-text contexts, the summed log-probability of each continuation
  text and its token count (lm-eval's multiple-choice scoring).
- ``generate``: for chat prompts ending with a user message, ``num_samples`` completions each,
  each a plain string or a ``Completion`` (the text with what the backend knows of it: a
  server's separate reasoning, why generation stopped, how many tokens it made).

A backend that cannot answer a kind raises ``NotSupported`` (a ``BackendError``); the runner then
falls back (e.g. letters parsed from a generated reply) and records the method it used.

A backend registered by name (``chattasks.eval.backends.BACKENDS``) declares the options of its
constructor once, as a class attribute ``OPTIONS`` (a tuple of ``BackendOption``):
the command line makes a flag of each, ``evaluate_model`` accepts exactly those, and the run
directory compares on resume only the options that change results (``operational=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from chattasks.eval.reasoning import TagPair, normalize_tags
from chattasks.tools.calls import TOOL_SETTINGS, ToolCall

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class BackendOption:
    """One constructor keyword a backend takes, as the command line and run.json see it.

    ``kind`` is the value's type (``str``, ``int``, ``float``); ``repeatable`` options take a list
    (a flag given several times). ``operational`` options change how fast a run goes, not what
    it computes (concurrency, retries, batch size): a resumed run may change them.
    """

    name: str
    kind: type
    help: str
    operational: bool = False
    repeatable: bool = False
    flag: str | None = None

    @property
    def cli_flag(self) -> str:
        """The command-line flag: ``flag``, else ``--`` and the name with dashes."""
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode: greedy when temperature is 0, else sampled with temperature and optional top-k.

    ``tools``: ``auto``, ``calculator`` or ``none`` (``chattasks.tools.calls.TOOL_SETTINGS``); a
    scorer hands a backend ``calculator`` (offer it; a backend that cannot is an error), ``auto``
    (offer it if the model can call tools) or ``none``. ``reasoning_tags``: the (open, close)
    pairs a reply's reasoning is split off by (None: ``<think>``/``</think>``; see
    ``chattasks.eval.reasoning``), to which the model's chat template adds its own.
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_k: int | None = None
    num_samples: int = 1
    seed: int = 42
    tools: str = "auto"
    reasoning_tags: tuple[TagPair, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasoning_tags", normalize_tags(self.reasoning_tags))
        if self.tools not in TOOL_SETTINGS:
            raise ValueError(f"tools must be one of {', '.join(TOOL_SETTINGS)}; got {self.tools!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.temperature == 0 and self.num_samples > 1:
            raise ValueError("num_samples > 1 needs sampling: set temperature > 0")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (for results.json)."""
        payload = asdict(self)
        if self.reasoning_tags is not None:
            payload["reasoning_tags"] = [list(pair) for pair in self.reasoning_tags]
        return payload


@dataclass(frozen=True)
class Completion:
    """One generated reply: its text and what the backend knows of it (None: not known)."""

    text: str
    reasoning: str | None = None
    """Reasoning the backend returned apart from the text (a server's ``reasoning_content``)."""
    finish_reason: str | None = None
    """Why generation stopped: ``stop`` (an end token or stop sequence), ``length`` (the token limit)."""
    tokens: int | None = None
    """Tokens generated (the text's and the reasoning's)."""
    reasoning_tokens: int | None = None
    """Of ``tokens``, those of the reasoning (a server's ``reasoning_tokens`` usage, or counted)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tool calls made while generating, with their positions in ``text``."""
    tools: str | None = None
    """The tool offered to the model for this reply (``calculator``), None when none was."""

    @classmethod
    def of(cls, reply: str | Completion) -> Completion:
        """``reply`` as a Completion (a plain string is its text, nothing else known)."""
        return reply if isinstance(reply, Completion) else cls(reply)


@dataclass(frozen=True)
class LetterScores:
    """Scores of the candidate letters for one prompt, and how they were obtained."""

    scores: dict[str, float]
    method: str  # "logits" (local model), "logprobs" (server top_logprobs) or "completion" (parsed reply)

    def best(self) -> str | None:
        """The highest-scoring letter (None when no letter got a score)."""
        return max(self.scores, key=self.scores.__getitem__) if self.scores else None


@runtime_checkable
class Backend(Protocol):
    """A chat model chattasks can evaluate."""

    name: str

    def describe(self) -> dict[str, Any]:
        """What is being evaluated, for results.json: backend name, model id, dtype, device, ..."""
        ...

    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """For each chat prompt, score each of its letters as the first token of the assistant's reply."""
        ...

    def loglikelihoods(
        self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
    ) -> list[list[tuple[float, int]]]:
        """For each plain-text context, (summed log-probability, token count) of each continuation."""
        ...

    def generate(
        self, prompts: Sequence[Messages], config: GenerationConfig
    ) -> Sequence[Sequence[str | Completion]]:
        """For each chat prompt, ``config.num_samples`` assistant replies (strings or Completions)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (servers' connections, GPU memory)."""
        ...
