"""Runs for the report tests: the in-memory tasks evaluated by rule-following "models".

``student(seed)`` is a ``messages -> str`` function that works the arithmetic of the in-memory
ARC, MMLU and GSM8K questions out from the prompt and then, depending on a hash of the seed and
the question, answers right, answers wrong or answers nothing usable (an extraction failure).
Different seeds give different answers on the same questions, so two runs have flipped questions.
``ToolChat`` is a two-turn generative task whose prompt holds an assistant turn with tool-call parts.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from chattasks.eval.runner import evaluate_model
from chattasks.task import Conversation, Task
from chattasks.tasks.gsm8k import GSM8K

MEMORY_TASKS = ["mem-ARC", "mem-MMLU", "mem-GSM8K"]


def _right_answer(text: str) -> int | None:
    if match := re.search(r"sum of (\d+) and (\d+)", text):
        return int(match[1]) + int(match[2])
    if match := re.search(r"What is (\d+) times (\d+)", text):
        return int(match[1]) * int(match[2])
    if match := re.search(r"has (\d+) marbles\. She buys (\d+) bags of (\d+)", text):
        return int(match[1]) + int(match[2]) * int(match[3])
    return None


def student(seed: int):
    """A model that is right about 60% of the time, wrong 30%, and unreadable 10% (by question and seed)."""

    def answer(messages: list[dict[str, Any]]) -> str:
        text = messages[-1]["content"]
        roll = zlib.crc32(f"{seed}:{text}".encode()) % 10
        right = _right_answer(text)
        options = dict(re.findall(r"^- (.+)=([A-Z0-9])$", text, flags=re.MULTILINE))
        if options:  # multiple choice: "- 24=A" lines
            if roll == 9:
                return "I am not sure."
            letters = list(options.values())
            gold = options.get(str(right), letters[0])
            return gold if roll < 6 else letters[(letters.index(gold) + 1) % len(letters)]
        if roll == 9:
            return "I cannot tell."
        value = right if roll < 6 or right is None else right + 1
        return f"Working it out step by step, the total is {value}.\n#### {value}"

    answer.__name__ = answer.__qualname__ = f"student{seed}"
    return answer


def make_run(path: Path, seed: int, tasks: list[Any] | None = None, **kwargs: Any) -> Path:
    """Evaluate ``student(seed)`` on ``tasks`` (default: the in-memory tasks) into run directory ``path``."""
    evaluate_model(student(seed), tasks or MEMORY_TASKS, output=path, progress=False, **kwargs)
    return path


class ToolChat(GSM8K):
    """GSM8K's first in-memory rows asked as a second turn, after a turn that used the calculator."""

    def __init__(self, n: int = 6, **kwargs: Any) -> None:
        import memory_tasks

        Task.__init__(self, **kwargs)
        self.subset, self.split, self.rows = "memory", "test", memory_tasks.gsm8k_rows(n)

    def get_example(self, index: int) -> Conversation:
        conversation = super().get_example(index)
        first = [
            {"role": "user", "content": "What is 12 times 7?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me compute it. "},
                    {"type": "python", "text": "12*7"},
                    {"type": "python_output", "text": "84"},
                    {"type": "text", "text": "It is 84."},
                ],
            },
        ]
        return {**conversation, "messages": first + conversation["messages"]}
