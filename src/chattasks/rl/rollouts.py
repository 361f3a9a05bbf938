"""Rollouts without TRL: groups of sampled replies with rewards and group-relative advantages.

``rollouts(backend, task, indices)`` samples ``num_samples`` replies per question on any backend
(``hf``, ``openai`` so that a vLLM server samples, ``callable``), as nanochat's RL stage does
(16 samples, temperature 1.0, top-k 50), and returns one ``RolloutGroup`` per question: the
prompt, the replies, each reply's ``Reward`` (correctness and shaping components), the
advantages, pass@k and the calculator calls of each reply (where the tool loop ran: what was forced
output, to leave out of the loss). The advantage of a reply is its reward minus the group's mean reward
(nanochat's choice); ``normalize=True`` divides by the group's standard deviation as well (GRPO's
z-score; a group whose rewards are all equal gets advantages of 0).

Sampling goes through the evaluation runner, so it is reproducible from the seed whatever the
batching (the backends seed each sample by seed, sample number and prompt), and with ``output``
it is journaled like an evaluation run: a killed rollout job resumes with ``resume=True``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chattasks.eval.backends.base import GenerationConfig
from chattasks.passk import pass_at_k
from chattasks.rl.reward import Reward, RewardShaping, reward_of
from chattasks.task import Conversation, Task


class IndexSubset(Task):
    """Rows ``indices`` of ``task``, in that order, graded by the task that owns each."""

    def __init__(self, task: Task, indices: Sequence[int], name: str) -> None:
        super().__init__()
        self.task = task
        self.indices = [int(i) for i in indices]
        self.name = name

    @property
    def eval_type(self) -> str:
        """The task's eval type."""
        return self.task.eval_type

    def num_examples(self) -> int:
        return len(self.indices)

    def get_example(self, index: int) -> Conversation:
        return self.task[self.indices[index]]

    def locate(self, index: int) -> tuple[Task, int]:
        """The task that owns row ``index`` of the subset (and its physical row there)."""
        return self.task.locate(self.indices[self._physical_index(index)])

    def evaluate(self, conversation: Conversation, assistant_response: str) -> int | float:
        """Graded by the subset's task (scorers grade by the owner ``locate`` gives)."""
        return self.task.evaluate(conversation, assistant_response)


@dataclass(frozen=True)
class RolloutGroup:
    """The replies sampled for one question, with their rewards and group-relative advantages."""

    task: str
    index: int
    prompt: list[dict[str, Any]]
    replies: list[str]
    rewards: list[Reward]
    advantages: list[float]
    pass_at_k: dict[str, float]
    tool_calls: list[list[dict[str, Any]]]
    """Per reply, the calculator calls made while it was generated (expression, result or error,
    position in the reply): the forced tool output to leave out of a policy-gradient loss."""

    @property
    def mean_reward(self) -> float:
        """The group's mean total reward."""
        return sum(r.total for r in self.rewards) / len(self.rewards)


def advantages_of(rewards: Sequence[float], normalize: bool = False) -> list[float]:
    """Reward minus the group mean; with ``normalize``, divided by the group's (population) standard deviation."""
    mean = sum(rewards) / len(rewards)
    centred = [r - mean for r in rewards]
    if not normalize:
        return centred
    std = math.sqrt(sum(c * c for c in centred) / len(centred))
    return [c / std if std > 0 else 0.0 for c in centred]


def rollouts(
    backend: Any,
    task: str | Task,
    indices: Sequence[int],
    *,
    num_samples: int = 16,
    temperature: float = 1.0,
    top_k: int | None = 50,
    max_new_tokens: int = 256,
    seed: int = 42,
    ks: Sequence[int] = (1,),
    normalize: bool = False,
    shaping: RewardShaping | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
) -> list[RolloutGroup]:
    """Sample ``num_samples`` replies for each row ``indices`` of ``task`` and reward them (see module docstring).

    ``backend`` is anything ``evaluate_model`` takes as a model (a Backend, a function, a model name).
    """
    from chattasks.eval.runner import evaluate_model
    from chattasks.registry import build_task

    name, built = build_task(task, data_dir=data_dir)
    if not indices:
        raise ValueError("indices is empty: name at least one row")
    subset = IndexSubset(built, indices, name)
    generation = GenerationConfig(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        num_samples=num_samples,
        seed=seed,
    )
    results = evaluate_model(
        backend,
        [subset],
        generation=generation,
        ks=ks,
        output=output,
        resume=resume,
        batch_size=batch_size,
        progress=False,
    )
    by_question: dict[int, list[Any]] = {}
    for record in results.samples[name]:
        by_question.setdefault(record.index, []).append(record)
    groups = []
    for position, records in sorted(by_question.items()):
        records.sort(key=lambda record: record.sample)
        owner = subset.locate(position)[0]
        conversation = subset[position]
        rewards = [reward_of(owner, conversation, record.response, shaping) for record in records]
        solved = sum(1 for reward in rewards if reward.correct > 0.5)
        groups.append(
            RolloutGroup(
                task=name,
                index=subset.indices[position],
                prompt=records[0].prompt,
                replies=[record.response for record in records],
                rewards=rewards,
                advantages=advantages_of([reward.total for reward in rewards], normalize),
                pass_at_k={f"pass@{k}": pass_at_k(len(rewards), solved, k) for k in ks if k <= len(rewards)},
                tool_calls=[list(record.tool_calls) for record in records],
            )
        )
    return groups
