"""ARC: the AI2 Reasoning Challenge, grade-school science multiple choice.

Dataset: ``allenai/ai2_arc`` -- https://huggingface.co/datasets/allenai/ai2_arc -- configs
``ARC-Easy`` (train 2,251, validation 570, test 2,376) and ``ARC-Challenge`` (train 1,119,
validation 299, test 1,172). Most rows label their choices A-D, but some use 1-4 and a few have
three or five choices; the row's own labels are the letters. This raw row::

    {"id": "NYSEDREGENTS_2014_8_10",
     "question": "A green plant absorbs light. A frog eats flies. These are both examples of how organisms",
     "choices": {"text": ["obtain energy", "escape predators", "produce offspring", "excrete waste"],
                 "label": ["1", "2", "3", "4"]},
     "answerKey": "1"}

becomes::

    {"messages": [
        {"role": "user", "content": "Multiple Choice question: A green plant absorbs light. ...organisms\\n"
                                    "- obtain energy=1\\n- escape predators=2\\n- produce offspring=3\\n"
                                    "- excrete waste=4\\n\\nRespond only with the letter of the correct answer."},
        {"role": "assistant", "content": "1"}],
     "letters": ["1", "2", "3", "4"],
     "question": "A green plant absorbs light. ...", "choices": ["obtain energy", ...]}

``messages`` and ``letters`` are exactly nanochat's; ``question`` and ``choices`` (the raw texts)
are chattasks' additions, used by the log-likelihood multiple-choice scorer.

Grading is ``chattasks.tasks.multiple_choice``'s: the response, stripped of surrounding
whitespace (and nothing else: ``"a"`` and ``"A)"`` are not ``"A"``), must equal the answer key.
A response that is not one of the row's letters is an extraction failure (``extract`` returns
None) and scores 0; it never raises.
"""

from __future__ import annotations

from typing import Any

from chattasks.data import load_rows
from chattasks.errors import DataError
from chattasks.render import render_mc
from chattasks.task import Conversation
from chattasks.tasks.multiple_choice import MultipleChoiceTask

DATASET = "allenai/ai2_arc"
SUBSETS = ("ARC-Easy", "ARC-Challenge")
SPLITS = ("train", "validation", "test")


def row_to_conversation(row: dict[str, Any]) -> Conversation:
    """The conversation of one ARC row: the rendered question, then the answer key."""
    letters = row["choices"]["label"]
    answer = row["answerKey"]
    if answer not in letters:
        raise DataError(
            f"ARC row {row.get('id')!r}: answer key {answer!r} is not one of its labels {letters}"
        )
    return {
        "messages": [
            {"role": "user", "content": render_mc(row["question"], letters, row["choices"]["text"])},
            {"role": "assistant", "content": answer},
        ],
        "letters": letters,
        "question": row["question"],
        "choices": row["choices"]["text"],
    }


class ARC(MultipleChoiceTask):
    """ARC questions (categorical); ``subset`` ARC-Easy|ARC-Challenge, ``split`` train|validation|test."""

    def __init__(self, subset: str, split: str, *, data_dir: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if subset not in SUBSETS:
            raise ValueError(f"ARC subset must be one of {', '.join(SUBSETS)}; got {subset!r}")
        if split not in SPLITS:
            raise ValueError(f"ARC split must be one of {', '.join(SPLITS)}; got {split!r}")
        self.subset, self.split = subset, split
        self.rows = load_rows(DATASET, subset, split, data_dir=data_dir)

    def num_examples(self) -> int:
        return len(self.rows)

    def get_example(self, index: int) -> Conversation:
        return row_to_conversation(self.rows[index])
