"""The sample record: one graded sample of a run, as the journal stores it and results read it.

Every journal line is one ``SampleRecord`` written by ``to_json`` and read back by ``from_json``;
nothing else builds or parses a line. Its fields:

- ``task``, ``index``, ``sample``: which sample (row ``index`` of the task's view, sample number
  ``sample``: 0 for multiple choice and greedy decoding). ``(index, sample)`` is the journal key.
- ``prompt``: the chat messages sent to the model.
- ``response``: the model's raw reply, or the chosen letter when it was scored without one. A
  server's separate reasoning (``reasoning_content``) is put back in front of the reply inside
  ``<think>…</think>`` (``reasoning.fold``), so the response alone holds the whole reply and
  re-grading reads it exactly as it was graded.
- ``answer``: the part of the response that was graded, outside its reasoning blocks; None when
  the response has no reasoning block (then the whole response was graded).
- ``reasoning``: the reply's reasoning (its blocks joined by a blank line), None when it had none;
  ``reasoning_tokens``: how many tokens it took, when the backend reports or counts them.
- ``finish_reason``: why generation stopped (``stop``, ``length``, ``tool_calls``) and ``tokens``:
  how many tokens were generated, when the backend says.
- ``tool_calls``: the tool calls made during the reply (``tools.calls.ToolCall.to_json``:
  tool, expression, result or error, position in the response).
- ``extracted``: the answer read from the response (a letter, GSM8K's number), None when none.
- ``reference``: the reference answer, for people reading the journal.
- ``score``: the grade (0 or 1 for every built-in task); ``score_norm``: loglik's acc_norm grade.
- ``failure``: None when the answer was read and graded, else a ``Failure``.
- ``method``: how the answer was obtained (``Method``'s values: ``logits``, ``logprobs``,
  ``completion``, ``loglik``, ``generate``).
- ``letters``: the candidate letters of a multiple-choice question (None otherwise).
- ``group``: the row's group for per-group breakdowns (MMLU's subject; None when the task has none).
- ``details``: what the method adds (letter scores, log-likelihoods, sandbox status and output).
- ``time``: seconds of model time spent on the sample; ``rank``: the process that wrote it;
  ``finished``: when (a Unix time).

Versions: every line carries ``"schema": SCHEMA_VERSION``. Lines written by chattasks 0.1.0 have
no ``schema`` key and are version 1 (the same fields less ``schema``). A field added in a later
version is read from an older line as its default. A line of a version newer than this code
knows raises ``JournalVersionError`` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chattasks.errors import JournalVersionError

SCHEMA_VERSION = 2
"""The version written into every journal line (0.1.0's lines, without one, are version 1)."""


class Failure(str, enum.Enum):
    """Why a sample has no graded answer (it scores 0 and is counted apart from wrong answers)."""

    NO_ANSWER = "no_answer"
    """A generative reply with no extractable answer."""
    NOT_A_LETTER = "not_a_letter"
    """A multiple-choice reply naming none of the letters."""
    TIMEOUT = "timeout"
    """The sandbox stopped the program at its time limit."""
    SANDBOX_ERROR = "sandbox_error"
    """The sandbox itself failed; the program's fate is unknown."""
    TRUNCATED_IN_REASONING = "truncated_in_reasoning"
    """The reply hit the token limit inside its reasoning: it never gave an answer."""

    def __str__(self) -> str:
        return self.value


class Method(str, enum.Enum):
    """How a sample's answer was obtained."""

    LOGITS = "logits"
    """Letter scores from a local model's logits."""
    LOGPROBS = "logprobs"
    """Letter scores from a server's top log-probabilities."""
    COMPLETION = "completion"
    """A one-token reply read as a letter (a backend without scores)."""
    LOGLIK = "loglik"
    """Each choice's log-likelihood as a continuation (lm-eval's way)."""
    GENERATE = "generate"
    """A free reply, graded by the task (a letter parsed from it for multiple choice)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SampleRecord:
    """One graded sample of a run (see the module docstring for every field)."""

    task: str
    index: int
    sample: int
    prompt: list[dict[str, Any]]
    response: str
    extracted: str | None
    reference: str | None
    score: float
    failure: Failure | None
    method: str
    letters: list[str] | None = None
    score_norm: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0
    rank: int = 0
    finished: float | None = None
    answer: str | None = None
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    tokens: int | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    group: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        """The journal key ``(index, sample)``."""
        return self.index, self.sample

    @property
    def correct(self) -> bool:
        """Whether the sample counts as solved (score above one half)."""
        return self.score > 0.5

    def replace(self, **changes: Any) -> SampleRecord:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The journal line's object: strict-JSON values; ``letters``, ``score_norm``, ``group`` and the
        reply's reasoning, finish and tool fields only when set."""
        payload: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value in (None, []) and item.name in _OMITTED_WHEN_NONE:
                continue
            payload[item.name] = value.value if isinstance(value, enum.Enum) else value
        return finite(payload)

    @classmethod
    def from_json(cls, payload: Mapping[str, Any], where: str = "journal line") -> SampleRecord:
        """Rebuild a record from a journal line's object (any known version); ``where`` names the
        line in errors. JournalVersionError for a newer version; KeyError/TypeError/ValueError
        for an object that is not a record."""
        version = payload.get("schema", 1)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
            raise JournalVersionError(
                f"{where}: journal schema version {version!r}; this chattasks reads versions 1 to "
                f"{SCHEMA_VERSION} (a newer chattasks wrote it: upgrade chattasks)"
            )
        known = _FIELDS if cls is SampleRecord else {item.name for item in dataclasses.fields(cls)}
        data = {key: value for key, value in payload.items() if key in known}
        data["index"] = _integer(payload["index"], "index")
        data["sample"] = _integer(payload.get("sample", 0), "sample")
        data["task"] = str(payload["task"])
        failure = payload.get("failure")
        data["failure"] = Failure(failure) if failure else None
        data["score"] = float(payload["score"])
        if data.get("score_norm") is not None:
            data["score_norm"] = float(data["score_norm"])
        data.setdefault("prompt", [])
        data.setdefault("response", "")
        data.setdefault("extracted", None)
        data.setdefault("reference", None)
        data["method"] = str(payload.get("method"))
        data["details"] = dict(payload.get("details") or {})
        data["tool_calls"] = [dict(call) for call in payload.get("tool_calls") or []]
        return cls(**data)


_OMITTED_WHEN_NONE = frozenset(
    {
        "letters",
        "score_norm",
        "group",
        "answer",
        "reasoning",
        "reasoning_tokens",
        "finish_reason",
        "tokens",
        "tool_calls",
    }
)
_FIELDS = frozenset(item.name for item in dataclasses.fields(SampleRecord))


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (e.g. a letter outside a server's top log-probs,
    scored -inf) replaced by None, in nested dicts and lists: journal lines are strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
