"""What the multiple-choice tasks (ARC, MMLU) share: grading a reply against the question's letters.

The reply, stripped of surrounding whitespace (and nothing else: ``"a"`` and ``"A)"`` are not
``"A"``), must be one of the letters; it is correct when it equals the letter that ends the
conversation. A reply that is none of the letters is an extraction failure (``extract`` returns
None) and scores 0; grading never raises.

``parse_letter`` reads the letter from a free-form reply (a model answering in words), for the
scorers and backends that get text where a letter was asked for. ``loglik_request`` is lm-eval's
ARC format (``"Question: {question}\nAnswer:"`` + ``" {choice text}"``), used by the ``loglik``
scorer; MMLU overrides it with lm-eval's MMLU format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chattasks.errors import TaskError
from chattasks.task import Conversation, LoglikRequest, Task

_TOKEN = re.compile(r"[^\W_]+")  # a maximal run of letters and digits


def extract_choice(response: str, letters: Sequence[str]) -> str | None:
    """The letter a categorical response names: ``response`` stripped, if it is one of ``letters``; else None."""
    if not isinstance(response, str):
        return None
    answer = response.strip()
    return answer if answer in letters else None


def parse_letter(reply: str, letters: Sequence[str]) -> str | None:
    """The letter a free-form reply names, or None.

    The rule: the reply stripped of surrounding whitespace, when it is one of ``letters``; else
    the first word of the reply (a maximal run of letters and digits) that is exactly one of
    ``letters`` (case-sensitive). So ``"B"``, ``" B."``, ``"(B)"``, ``"**B**"`` and
    ``"The answer is B"`` all name B, while ``"b"`` and ``"Bees"`` name nothing.
    """
    exact = extract_choice(reply, letters)
    if exact is not None or not isinstance(reply, str):
        return exact
    return next((token for token in _TOKEN.findall(reply) if token in letters), None)


def letters_of(conversation: Conversation) -> list[str]:
    """The candidate letters of a categorical conversation (its ``"letters"`` key)."""
    letters = conversation.get("letters")
    if not letters:
        raise TaskError("a categorical conversation must carry its candidate letters under 'letters'")
    return [str(letter) for letter in letters]


def question_and_choices(task: Task, conversation: Conversation) -> tuple[str, list[str]]:
    """The raw question text and choice texts of a conversation (its ``question``/``choices`` keys)."""
    question, choices = conversation.get("question"), conversation.get("choices")
    if not isinstance(question, str) or not isinstance(choices, list | tuple) or not choices:
        raise TaskError(
            f"{type(task).__name__} conversations have no 'question' and 'choices' keys; "
            "the loglik scorer needs them (use --mc-scorer letter or generate)"
        )
    letters = letters_of(conversation)
    if len(letters) != len(choices):
        raise TaskError(f"{len(letters)} letters {letters} for {len(choices)} choices")
    return question, [str(choice) for choice in choices]


class MultipleChoiceTask(Task):
    """A categorical task: each conversation asks one question and ends in the right letter."""

    letters: Sequence[str] | None = None
    """The letters of every question (MMLU's A-D), or None when each conversation's ``letters`` say."""

    @property
    def eval_type(self) -> str:
        """'categorical': the model picks one of the question's letters."""
        return "categorical"

    def extract(self, conversation: Conversation, assistant_response: str) -> str | None:
        """The letter the response names, or None when it names none of the question's letters."""
        letters = self.letters if self.letters is not None else conversation["letters"]
        return extract_choice(assistant_response, letters)

    def evaluate(self, conversation: Conversation, assistant_response: str) -> int:
        """1 when the stripped response is the right letter, else 0 (also for a response outside the letters)."""
        choice = self.extract(conversation, assistant_response)
        return int(choice is not None and choice == conversation["messages"][-1]["content"])

    def loglik_request(self, conversation: Conversation) -> LoglikRequest:
        """lm-eval's ARC format: ``"Question: {question}\\nAnswer:"``, each choice's text after a space."""
        question, choices = question_and_choices(self, conversation)
        return LoglikRequest(
            f"Question: {question}\nAnswer:", [f" {choice}" for choice in choices], [len(c) for c in choices]
        )
