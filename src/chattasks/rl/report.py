"""Rewards of a finished run's replies, next to its accuracy (``chattasks reward RUN``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from chattasks.rl.reward import COMPONENTS, RewardShaping, reward_of


@dataclass(frozen=True)
class TaskRewards:
    """One task of a run: its samples' mean score (the accuracy's numerator per sample) and mean rewards."""

    task: str
    samples: int
    mean_score: float
    mean_correct: float
    mean_total: float
    components: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "task": self.task,
            "samples": self.samples,
            "mean_score": self.mean_score,
            "mean_correct": self.mean_correct,
            "mean_total": self.mean_total,
            "components": dict(self.components),
        }


def run_rewards(
    run_dir: str | os.PathLike[str],
    *,
    shaping: RewardShaping | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[TaskRewards]:
    """Reward every journaled reply of a run with its task (no model call), per task."""
    from chattasks.eval.settings import open_run
    from chattasks.registry import build_task

    run, _, settings, data_dir = open_run(run_dir, data_dir)
    out = []
    for name in settings.tasks:
        _, task = build_task(name, data_dir=data_dir)
        records = [r for r in run.read(name).records.values() if r.index < len(task)]
        rewards = [reward_of(task.locate(r.index)[0], task[r.index], r.response, shaping) for r in records]
        n = len(rewards)
        out.append(
            TaskRewards(
                task=name,
                samples=n,
                mean_score=sum(r.score for r in records) / n if n else 0.0,
                mean_correct=sum(r.correct for r in rewards) / n if n else 0.0,
                mean_total=sum(r.total for r in rewards) / n if n else 0.0,
                components={c: sum(r.components[c] for r in rewards) / n if n else 0.0 for c in COMPONENTS},
            )
        )
    return out
