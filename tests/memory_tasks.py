"""In-memory tasks for testing the evaluation core without ../shared/data.

They are the real ARC, MMLU and GSM8K classes (real conversations, real graders) over rows made
here in the datasets' own schemas: arithmetic questions whose answers are known. ARC rows mix
lettered and numbered labels and three or four choices, as the real dataset does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chattasks.registry import register_task, unregister_task
from chattasks.task import Task
from chattasks.tasks.arc import ARC
from chattasks.tasks.customjson import CustomJSON
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tasks.mmlu import MMLU

NAMES = {"arc": "mem-ARC", "mmlu": "mem-MMLU", "gsm8k": "mem-GSM8K", "chat": "mem-chat"}
IDENTITY = Path(__file__).resolve().parent / "fixtures" / "customjson" / "identity.jsonl"


def arc_rows(n: int = 60) -> list[dict[str, Any]]:
    """ARC-schema rows: which number is the sum of two others (3 or 4 choices, letters or digits)."""
    rows = []
    for i in range(n):
        a, b = 3 + 7 * i % 41, 5 + 11 * i % 37
        size = 3 if i % 5 == 4 else 4
        labels = list("1234"[:size]) if i % 7 == 3 else list("ABCD"[:size])
        right = i % size
        texts = [str(a + b + (k - right) * (1 + i % 3)) for k in range(size)]
        rows.append(
            {
                "id": f"mem-arc-{i}",
                "question": f"Which number is the sum of {a} and {b}?",
                "choices": {"text": texts, "label": labels},
                "answerKey": labels[right],
            }
        )
    return rows


def mmlu_rows(n: int = 40) -> list[dict[str, Any]]:
    """MMLU-schema rows over a few subjects: which product is right."""
    subjects = ["elementary_mathematics", "high_school_mathematics", "college_mathematics"]
    rows = []
    for i in range(n):
        a, b = 2 + i % 9, 3 + i % 8
        right = (i * 3) % 4
        rows.append(
            {
                "question": f"What is {a} times {b}?",
                "subject": subjects[i % len(subjects)],
                "choices": [str(a * b + (k - right)) for k in range(4)],
                "answer": right,
            }
        )
    return rows


def gsm8k_rows(n: int = 60) -> list[dict[str, Any]]:
    """GSM8K-schema rows: two-step word problems with calculator calls and a ``#### N`` answer."""
    rows = []
    for i in range(n):
        a, b, c = 4 + i, 2 + i % 7, 3 + i % 5
        total = a + b * c
        rows.append(
            {
                "question": f"Mia has {a} marbles. She buys {b} bags of {c} marbles. How many marbles does she have?",
                "answer": f"The bags hold {b}*{c}=<<{b}*{c}={b * c}>>{b * c} marbles.\n"
                f"She has {a}+{b * c}=<<{a}+{b * c}={total}>>{total} marbles.\n#### {total}",
            }
        )
    return rows


class MemoryARC(ARC):
    """ARC over ``arc_rows()``."""

    def __init__(self, n: int = 60, **kwargs: Any) -> None:
        Task.__init__(self, **kwargs)
        self.subset, self.split, self.rows = "memory", "test", arc_rows(n)


class MemoryMMLU(MMLU):
    """MMLU over ``mmlu_rows()``."""

    def __init__(self, n: int = 40, **kwargs: Any) -> None:
        Task.__init__(self, **kwargs)
        self.subset, self.split, self.rows = "memory", "test", mmlu_rows(n)


class MemoryGSM8K(GSM8K):
    """GSM8K over ``gsm8k_rows()``."""

    def __init__(self, n: int = 60, **kwargs: Any) -> None:
        Task.__init__(self, **kwargs)
        self.subset, self.split, self.rows = "memory", "test", gsm8k_rows(n)


def register() -> None:
    """Register the in-memory tasks under ``NAMES`` (``mem-chat``: a training-only CustomJSON file)."""
    register_task(NAMES["arc"], MemoryARC, replace=True, description="in-memory ARC (tests)")
    register_task(NAMES["mmlu"], MemoryMMLU, replace=True, description="in-memory MMLU (tests)")
    register_task(NAMES["gsm8k"], MemoryGSM8K, replace=True, description="in-memory GSM8K (tests)")
    register_task(
        NAMES["chat"], CustomJSON, replace=True, filepath=str(IDENTITY), description="training only"
    )


def unregister() -> None:
    """Remove them again."""
    for name in NAMES.values():
        unregister_task(name)
