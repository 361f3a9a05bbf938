"""GSM8K: grade-school math word problems, solved step by step with a calculator.

Dataset: ``openai/gsm8k`` -- https://huggingface.co/datasets/openai/gsm8k -- configs ``main`` and
``socratic`` (sub-questions in the answers), splits ``train`` (7,473 rows) and ``test`` (1,319).
Each ``<<expression=result>>`` in an answer is a calculator call. This raw row::

    {"question": "A cat has nine lives.  A dog has 3 less lives than a cat.  A mouse has 7 more
                  lives than a dog.  How many lives does a mouse have?",
     "answer": "Dog:9-3=<<9-3=6>>6 lives\\nMouse:6+7=<<6+7=13>>13 lives\\n#### 13"}

becomes (the user content is the question as is; shortened here)::

    {"messages": [
        {"role": "user", "content": "A cat has nine lives.  ...  How many lives does a mouse have?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Dog:9-3="},
            {"type": "python", "text": "9-3"},
            {"type": "python_output", "text": "6"},
            {"type": "text", "text": "6 lives\\nMouse:6+7="},
            {"type": "python", "text": "6+7"},
            {"type": "python_output", "text": "13"},
            {"type": "text", "text": "13 lives\\n#### 13"}]}]}

Text around and between calls is always its own part, even when empty (two adjacent calls have
an empty text part between them), exactly as nanochat builds it. A call is split on its LAST
``=``; a call without ``=`` has an empty output. Outputs are the dataset's text, kept as is.

Grading (``evaluate``): ``extract_answer`` finds the LAST ``####`` marker, takes the rest of its
line, drops ``$``, commas and whitespace, and reads the number at its start (so a trailing
period or a unit after the number is ignored); ``normalize_number`` writes it canonically
(``10.00`` -> ``10``, ``1,000`` -> ``1000``, ``-3.0`` -> ``-3``). A response scores 1 when its
number equals the reference's; a response with no such number is an extraction failure
(``extract`` returns None) and scores 0.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.data import load_rows
from chattasks.task import Conversation, Task

DATASET = "openai/gsm8k"
SUBSETS = ("main", "socratic")
SPLITS = ("train", "test")

_CALL = re.compile(r"(<<[^>]+>>)")  # a captured group: re.split keeps the calls at odd positions
_MARKER = re.compile(r"####([^\n]*)")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_DROP = re.compile(r"[\s$,]+")


def normalize_number(text: str) -> str | None:
    """The number at the start of ``text`` (after dropping ``$``, commas, whitespace), canonical; else None."""
    match = _NUMBER.match(_DROP.sub("", text))
    if match is None:
        return None
    value = Decimal(match.group())  # the pattern admits only valid decimals
    return "0" if value == 0 else format(value.normalize(), "f")


def extract_answer(text: str) -> str | None:
    """The canonical number after the LAST ``####`` marker in ``text``, or None if there is none."""
    markers = _MARKER.findall(text)
    return normalize_number(markers[-1]) if markers else None


def answer_parts(answer: str) -> list[dict[str, str]]:
    """Split a GSM8K answer into text, ``python`` and ``python_output`` parts (see module docstring)."""
    parts = []
    for position, piece in enumerate(_CALL.split(answer)):
        if position % 2 == 0:
            parts.append({"type": "text", "text": piece})
            continue
        expression, equals, result = piece[2:-2].rpartition("=")
        if not equals:  # no '=': the whole call is the expression
            expression, result = result, ""
        parts.append({"type": "python", "text": expression})
        parts.append({"type": "python_output", "text": result})
    return parts


def row_to_conversation(row: dict[str, Any]) -> Conversation:
    """The conversation of one GSM8K row: the question, then the answer as parts."""
    return {
        "messages": [
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": answer_parts(row["answer"])},
        ]
    }


class FinalNumberTask(Task):
    """A task graded as GSM8K is: the number after the reply's last ``####`` against the reference's."""

    def extract(self, conversation: Conversation, assistant_response: Any) -> str | None:
        """The canonical number a response gives, or None (an extraction failure)."""
        return extract_answer(assistant_text(assistant_response))

    def evaluate(self, conversation: Conversation, assistant_response: Any) -> int:
        """1 when the response's final number equals the reference's, else 0 (also when none is found).

        ``assistant_response`` is a string or a list of parts, like an assistant message's content.
        """
        reference = extract_answer(assistant_text(conversation["messages"][-1]["content"]))
        predicted = self.extract(conversation, assistant_response)
        return int(predicted is not None and predicted == reference)


class GSM8K(FinalNumberTask):
    """GSM8K word problems (generative); ``subset`` main|socratic, ``split`` train|test."""

    tools = ("calculator",)

    def __init__(self, subset: str, split: str, *, data_dir: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if subset not in SUBSETS:
            raise ValueError(f"GSM8K subset must be one of {', '.join(SUBSETS)}; got {subset!r}")
        if split not in SPLITS:
            raise ValueError(f"GSM8K split must be one of {', '.join(SPLITS)}; got {split!r}")
        self.subset, self.split = subset, split
        self.rows = load_rows(DATASET, subset, split, data_dir=data_dir)

    @property
    def eval_type(self) -> str:
        """'generative': the model writes a worked answer ending in ``#### <number>``."""
        return "generative"

    def num_examples(self) -> int:
        return len(self.rows)

    def get_example(self, index: int) -> Conversation:
        return row_to_conversation(self.rows[index])
