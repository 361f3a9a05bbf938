"""Scoring: turn a backend's answers into graded samples, one journal record per sample.

Multiple choice (categorical tasks: ARC, MMLU) is scored one of three ways (``mc_scorer``):

- ``letter`` (nanochat's way, the default): ``backend.letter_scores`` scores each of the row's
  letters as the first token of the assistant's reply; the best letter is the answer. A backend
  that cannot (``NotSupported``) falls back to ``generate`` and the record says so.
- ``loglik`` (lm-eval's way): each choice is scored as a continuation of a plain-text context by
  ``backend.loglikelihoods`` (one call per batch; the backend computes the shared context once).
  ``acc`` is the argmax of the summed log-likelihoods, ``acc_norm`` the argmax of the sums divided
  by each choice's length in characters; ties go to the first choice (numpy's argmax). The
  formats are lm-eval's, so the numbers compare with its ``arc_easy``/``arc_challenge``/``mmlu``:
  ARC ``"Question: {question}\\nAnswer:"`` + ``" {choice text}"``; MMLU
  ``"The following are multiple choice questions (with answers) about {subject}.\\n\\n"
  "{question.strip()}\\nA. {choice 0}\\n...D. {choice 3}\\nAnswer:"`` + ``" A"`` .. ``" D"``
  (one character each, so MMLU's acc_norm equals its acc). A task may override the format with a
  ``loglik_request(conversation) -> LoglikRequest`` method.
- ``generate``: the model answers freely (greedy, at most ``MC_MAX_NEW_TOKENS`` tokens) and the
  letter is parsed from its reply by ``parse_letter``.

Generative tasks (GSM8K, SpellingBee, HumanEval, ...) get ``num_samples`` replies per question
from ``backend.generate``; each is graded by the task's ``evaluate``, and the task's
``extract(conversation, response) -> str | None`` tells an extraction failure (None:
``failure = "no_answer"``) from a wrong answer (``Task.extract`` by default reads any non-empty
reply; GSM8K and SpellingBee read the ``#### N`` number). A task with
``run_many(conversations, responses)`` (HumanEval) is graded in parallel in the sandbox instead,
and its timeouts and sandbox errors are failures of their own (``"timeout"``, ``"sandbox_error"``).

Every grading function here takes only what a journal record keeps, so ``regrade_record`` can
re-grade a finished run without calling the model again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError, NotSupported, TaskError
from chattasks.eval.backends.base import Backend, GenerationConfig, LetterScores, Messages
from chattasks.task import Conversation, Task

MC_SCORERS = ("letter", "loglik", "generate")
MC_MAX_NEW_TOKENS = 32
"""Tokens a model may write when answering a multiple-choice question freely (``generate``)."""

# Failure kinds a record may carry (None: the answer was read and graded).
NO_ANSWER = "no_answer"  # a generative reply with no extractable answer
NOT_A_LETTER = "not_a_letter"  # a multiple-choice reply naming none of the letters
TIMEOUT = "timeout"  # the sandbox stopped the program at its time limit
SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed; the program's fate is unknown

_TOKEN = re.compile(r"[^\W_]+")  # a maximal run of letters and digits


def parse_letter(reply: str, letters: Sequence[str]) -> str | None:
    """The letter a free-form reply names, or None.

    The rule: the reply stripped of surrounding whitespace, when it is one of ``letters``; else
    the first word of the reply (a maximal run of letters and digits) that is exactly one of
    ``letters`` (case-sensitive). So ``"B"``, ``" B."``, ``"(B)"``, ``"**B**"`` and
    ``"The answer is B"`` all name B, while ``"b"`` and ``"Bees"`` name nothing.
    """
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    if text in letters:
        return text
    for token in _TOKEN.findall(text):
        if token in letters:
            return token
    return None


def prompt_of(conversation: Conversation) -> Messages:
    """The chat prompt of a conversation: its messages without the final assistant message."""
    messages = conversation["messages"]
    if messages and messages[-1].get("role") == "assistant":
        return list(messages[:-1])
    return list(messages)


def reference_of(task: Task, conversation: Conversation) -> str:
    """The reference answer of a conversation, for people reading the journal: what the task's
    ``extract`` reads from its final assistant message (GSM8K's number), else that message's text."""
    content = conversation["messages"][-1]["content"]
    can_extract, extracted = _extracted(task, conversation, content)
    return extracted if can_extract and extracted is not None else assistant_text(content)


def letters_of(conversation: Conversation) -> list[str]:
    """The candidate letters of a categorical conversation (its ``"letters"`` key)."""
    letters = conversation.get("letters")
    if not letters:
        raise TaskError("a categorical conversation must carry its candidate letters under 'letters'")
    return [str(letter) for letter in letters]


def evaluate(task: Task, index: int, conversation: Conversation, response: Any) -> float:
    """Grade ``response`` to row ``index`` with the task (composite tasks by the row's owner)."""
    evaluate_at = getattr(task, "evaluate_at", None)
    score = evaluate_at(index, response) if evaluate_at is not None else task.evaluate(conversation, response)
    return float(score)


def _extracted(task: Task, conversation: Conversation, response: Any) -> tuple[bool, str | None]:
    """Whether the task can extract answers, and what it extracts from ``response``."""
    extract: Callable[[Conversation, Any], str | None] | None = getattr(task, "extract", None)
    if extract is None:
        return False, None
    return True, extract(conversation, response)


# ----- multiple choice: letter ------------------------------------------------------------------
def grade_letter(
    task: Task,
    index: int,
    conversation: Conversation,
    letter: str | None,
    method: str,
    scores: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The record fields of a multiple-choice answer given as a letter (None: no letter)."""
    letters = letters_of(conversation)
    chosen = letter if letter in letters else None
    response = letter or ""
    return {
        "response": response,
        "extracted": chosen,
        "score": evaluate(task, index, conversation, chosen) if chosen is not None else 0.0,
        "failure": None if chosen is not None else NOT_A_LETTER,
        "method": method,
        "letters": letters,
        "details": {"scores": finite(scores)} if scores is not None else {},
    }


def grade_mc_reply(task: Task, index: int, conversation: Conversation, reply: str) -> dict[str, Any]:
    """The record fields of a free-form reply to a multiple-choice question (method ``generate``)."""
    letters = letters_of(conversation)
    chosen = parse_letter(reply, letters)
    return {
        "response": reply,
        "extracted": chosen,
        "score": evaluate(task, index, conversation, chosen) if chosen is not None else 0.0,
        "failure": None if chosen is not None else NOT_A_LETTER,
        "method": "generate",
        "letters": letters,
        "details": {},
    }


def score_letters(
    backend: Backend, task: Task, items: Sequence[tuple[int, Conversation]]
) -> list[dict[str, Any]]:
    """Score a batch of multiple-choice questions by letter scores (falls back to generate)."""
    prompts = [prompt_of(conversation) for _, conversation in items]
    letters = [letters_of(conversation) for _, conversation in items]
    try:
        results: list[LetterScores] = backend.letter_scores(prompts, letters)
    except NotSupported:
        records = score_mc_generate(backend, task, items)
        for record in records:
            record["details"]["fallback_from"] = "letter"
        return records
    _check_length(backend, "letter_scores", results, items)
    return [
        grade_letter(task, index, conversation, result.best(), result.method, result.scores)
        for (index, conversation), result in zip(items, results)
    ]


def score_mc_generate(
    backend: Backend, task: Task, items: Sequence[tuple[int, Conversation]], seed: int = 42
) -> list[dict[str, Any]]:
    """Score a batch of multiple-choice questions by parsing the letter from greedy replies."""
    config = GenerationConfig(max_new_tokens=MC_MAX_NEW_TOKENS, temperature=0.0, num_samples=1, seed=seed)
    replies = backend.generate([prompt_of(conversation) for _, conversation in items], config)
    _check_length(backend, "generate", replies, items)
    return [
        grade_mc_reply(task, index, conversation, _first(backend, samples))
        for (index, conversation), samples in zip(items, replies)
    ]


# ----- multiple choice: log-likelihood ----------------------------------------------------------
@dataclass(frozen=True)
class LoglikRequest:
    """What the ``loglik`` scorer asks for one question: a context, one continuation per choice,
    and each choice's length in characters (the divisor of acc_norm)."""

    context: str
    continuations: list[str]
    lengths: list[int]


def loglik_request(task: Task, conversation: Conversation) -> LoglikRequest:
    """The lm-eval style request of a multiple-choice conversation (see the module docstring)."""
    custom = getattr(task, "loglik_request", None)
    if custom is not None:
        request: LoglikRequest = custom(conversation)
        return request
    question, choices = conversation.get("question"), conversation.get("choices")
    if not isinstance(question, str) or not isinstance(choices, list | tuple) or not choices:
        raise TaskError(
            f"{type(task).__name__} conversations have no 'question' and 'choices' keys; "
            "the loglik scorer needs them (use --mc-scorer letter or generate)"
        )
    letters = letters_of(conversation)
    if len(letters) != len(choices):
        raise TaskError(f"{len(letters)} letters {letters} for {len(choices)} choices")
    subject = conversation.get("subject")
    if isinstance(subject, str):  # MMLU: lm-eval's mmlu template, the letters are the continuations
        header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        lines = "".join(f"\n{letter}. {choice}" for letter, choice in zip(letters, choices))
        return LoglikRequest(
            f"{header}{question.strip()}{lines}\nAnswer:",
            [f" {letter}" for letter in letters],
            [len(letter) for letter in letters],
        )
    return LoglikRequest(
        f"Question: {question}\nAnswer:",
        [f" {choice}" for choice in choices],
        [len(str(choice)) for choice in choices],
    )


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


def grade_loglik(
    task: Task,
    index: int,
    conversation: Conversation,
    loglikelihoods: Sequence[Sequence[float]],
    lengths: Sequence[int],
) -> dict[str, Any]:
    """The record fields of a log-likelihood-scored question: acc in ``score``, acc_norm in ``score_norm``."""
    letters = letters_of(conversation)
    sums = [float(pair[0]) for pair in loglikelihoods]
    if len(sums) != len(letters):
        raise BackendError(f"got {len(sums)} log-likelihoods for {len(letters)} choices")
    chosen = letters[_argmax(sums)]
    chosen_norm = letters[_argmax([s / max(n, 1) for s, n in zip(sums, lengths)])]
    return {
        "response": chosen,
        "extracted": chosen,
        "score": evaluate(task, index, conversation, chosen),
        "score_norm": evaluate(task, index, conversation, chosen_norm),
        "failure": None,
        "method": "loglik",
        "letters": letters,
        "details": {
            "loglik": [[finite(float(pair[0])), int(pair[1])] for pair in loglikelihoods],
            "lengths": list(lengths),
            "norm_choice": chosen_norm,
        },
    }


def score_loglik(
    backend: Backend, task: Task, items: Sequence[tuple[int, Conversation]]
) -> list[dict[str, Any]]:
    """Score a batch of multiple-choice questions by the log-likelihood of each choice."""
    requests = [loglik_request(task, conversation) for _, conversation in items]
    try:
        results = backend.loglikelihoods(
            [request.context for request in requests], [request.continuations for request in requests]
        )
    except NotSupported as exc:
        raise NotSupported(
            f"backend {getattr(backend, 'name', type(backend).__name__)!r} cannot score log-likelihoods "
            f"({exc}); use --mc-scorer letter or generate"
        ) from exc
    _check_length(backend, "loglikelihoods", results, items)
    return [
        grade_loglik(task, index, conversation, result, request.lengths)
        for (index, conversation), request, result in zip(items, requests, results)
    ]


# ----- generative -------------------------------------------------------------------------------
def grade_replies(task: Task, pairs: Sequence[tuple[int, Conversation, str]]) -> list[dict[str, Any]]:
    """The record fields of generative replies ``(index, conversation, reply)``, graded in order.

    Tasks with ``run_many`` (HumanEval) run every reply of the batch in parallel in the sandbox.
    """
    run_many = getattr(task, "run_many", None)
    if run_many is not None and pairs:
        results = run_many([c for _, c, _ in pairs], [r for _, _, r in pairs])
        return [_sandbox_fields(reply, result) for (_, _, reply), result in zip(pairs, results)]
    records: list[dict[str, Any]] = []
    for index, conversation, reply in pairs:
        can_extract, extracted = _extracted(task, conversation, reply)
        records.append(
            {
                "response": reply,
                "extracted": extracted,
                "score": evaluate(task, index, conversation, reply),
                "failure": NO_ANSWER if can_extract and extracted is None else None,
                "method": "generate",
                "details": {},
            }
        )
    return records


def _sandbox_fields(reply: str, result: Any) -> dict[str, Any]:
    status = str(getattr(result, "status", "error"))
    failure = {"timeout": TIMEOUT, "error": SANDBOX_ERROR}.get(status)
    return {
        "response": reply,
        "extracted": None,
        "score": 1.0 if result.passed else 0.0,
        "failure": failure,
        "method": "generate",
        "details": {"status": status, "error": getattr(result, "error", None)},
    }


def score_generative(
    backend: Backend,
    task: Task,
    items: Sequence[tuple[int, Conversation]],
    config: GenerationConfig,
) -> list[dict[str, Any]]:
    """Generate ``config.num_samples`` replies per question and grade each; records carry ``sample``."""
    replies = backend.generate([prompt_of(conversation) for _, conversation in items], config)
    _check_length(backend, "generate", replies, items)
    pairs, numbers = [], []
    for (index, conversation), samples in zip(items, replies):
        if len(samples) != config.num_samples:
            raise BackendError(
                f"backend {getattr(backend, 'name', '?')!r} returned {len(samples)} samples, "
                f"expected num_samples={config.num_samples}"
            )
        for number, reply in enumerate(samples):
            pairs.append((index, conversation, _as_text(backend, reply)))
            numbers.append(number)
    records = grade_replies(task, pairs)
    for record, number in zip(records, numbers):
        record["sample"] = number
    return records


# ----- re-grading ---------------------------------------------------------------------------------
def regrade_records(
    task: Task, eval_type: str, pairs: Sequence[tuple[Conversation, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Re-grade journal records with the task's current grader: the records, updated (no model call)."""
    out: list[dict[str, Any]] = [dict(record) for _, record in pairs]
    generative = []
    for position, (conversation, record) in enumerate(pairs):
        index, method = int(record["index"]), record.get("method")
        if eval_type == "categorical":
            if method == "loglik":
                details = record.get("details") or {}
                lengths = loglik_request(task, conversation).lengths
                fields = grade_loglik(task, index, conversation, details.get("loglik", []), lengths)
            elif method == "generate":
                fields = grade_mc_reply(task, index, conversation, record.get("response", ""))
                fields["details"] = {**(record.get("details") or {}), **fields["details"]}
            else:
                scores = (record.get("details") or {}).get("scores")
                fields = grade_letter(
                    task, index, conversation, record.get("response") or None, str(method), scores
                )
            out[position].update(fields)
        else:
            generative.append((position, index, conversation, record.get("response", "")))
    graded = grade_replies(
        task, [(index, conversation, reply) for _, index, conversation, reply in generative]
    )
    for (position, *_), fields in zip(generative, graded):
        out[position].update(fields)
    return out


# ----- helpers ----------------------------------------------------------------------------------
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


def _check_length(backend: Backend, what: str, results: Sequence[Any], items: Sequence[Any]) -> None:
    if len(results) != len(items):
        raise BackendError(
            f"backend {getattr(backend, 'name', type(backend).__name__)!r}.{what} returned "
            f"{len(results)} results for {len(items)} prompts"
        )


def _as_text(backend: Backend, reply: Any) -> str:
    if not isinstance(reply, str):
        raise BackendError(
            f"backend {getattr(backend, 'name', '?')!r} returned a {type(reply).__name__} reply, expected str"
        )
    return reply


def _first(backend: Backend, samples: Sequence[str]) -> str:
    if not samples:
        raise BackendError(f"backend {getattr(backend, 'name', '?')!r} returned no reply")
    return _as_text(backend, samples[0])
