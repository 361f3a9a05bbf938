"""Rewards for reinforcement learning, graded exactly as evaluation grades.

The correctness reward of a reply is ``Task.reward(conversation, answer)`` (by default the task's
grade, 0 or 1, from the same extraction ``evaluate`` uses), where ``answer`` is the reply with its
reasoning split off exactly as evaluation splits it (``chattasks.eval.reasoning``: ``<think>`` blocks
by default; an unclosed block leaves no answer): the single source of a reward. Shaping is opt-in
(``RewardShaping``) and reported component by component, never mixed silently:

- ``answer_format``: 1 when the task can read an answer from the reply's answer part
  (``Task.extract`` is not None: a ``#### number`` for GSM8K and SpellingBee, one of the letters
  for multiple choice), else 0.
- ``reasoning_closed``: 1 when every reasoning block the reply opens is closed (a reply without
  reasoning counts as closed), else 0.

``total = correct + sum(weight * component)``; with the default shaping (all weights 0) the total
is the correctness reward alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chattasks.eval.reasoning import DEFAULT_TAGS, split_reasoning
from chattasks.task import Conversation, Task

COMPONENTS = ("answer_format", "reasoning_closed")
"""The shaping components a reward reports, beside its correctness."""


@dataclass(frozen=True)
class RewardShaping:
    """Weights of the shaping components added to the correctness reward (0: not added)."""

    answer_format: float = 0.0
    reasoning_closed: float = 0.0
    tags: tuple[tuple[str, str], ...] = DEFAULT_TAGS
    """The reasoning tag pairs (as ``--reasoning-tags``)."""

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"shaping weight {name} must be a number, got {value!r}")

    def weights(self) -> dict[str, float]:
        """Each component's weight."""
        return {name: float(getattr(self, name)) for name in COMPONENTS}


@dataclass(frozen=True)
class Reward:
    """The reward of one reply: its total, its correctness and each shaping component (unweighted)."""

    total: float
    correct: float
    components: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"total": self.total, "correct": self.correct, "components": dict(self.components)}


def reward_of(
    task: Task, conversation: Conversation, reply: str, shaping: RewardShaping | None = None
) -> Reward:
    """The reward of ``reply`` to ``conversation`` (graded by ``task``, or the task that owns it)."""
    shaping = shaping or RewardShaping()
    split = split_reasoning(reply, shaping.tags)
    answer = split.answer if split.closed else ""
    correct = float(task.reward(conversation, answer))
    components = {
        "answer_format": 0.0 if task.extract(conversation, answer) is None else 1.0,
        "reasoning_closed": 1.0 if split.closed else 0.0,
    }
    total = correct + sum(weight * components[name] for name, weight in shaping.weights().items())
    return Reward(total, correct, components)
