"""What the multiple-choice tasks (ARC, MMLU) share: grading a reply against the question's letters.

The reply, stripped of surrounding whitespace (and nothing else: ``"a"`` and ``"A)"`` are not
``"A"``), must be one of the letters; it is correct when it equals the letter that ends the
conversation. A reply that is none of the letters is an extraction failure (``extract`` returns
None) and scores 0; grading never raises.
"""

from __future__ import annotations

from collections.abc import Sequence

from chattasks.task import Conversation, Task


def extract_choice(response: str, letters: Sequence[str]) -> str | None:
    """The letter a categorical response names: ``response`` stripped, if it is one of ``letters``; else None."""
    if not isinstance(response, str):
        return None
    answer = response.strip()
    return answer if answer in letters else None


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
