"""chattasks tasks for TRL's ``GRPOTrainer``: a prompt dataset and reward functions that grade as evaluation does.

    from chattasks.rl import dataset, reward_function
    train = dataset("GSM8K", split_args={"split": "train"})            # a datasets.Dataset
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_function("GSM8K", split_args={"split": "train"})],
                          train_dataset=train, args=GRPOConfig(...))

Each dataset row holds ``prompt`` (the conversation's chat messages without the final assistant
message, or its text with ``conversational=False``), ``chattasks_task`` (the task's name),
``chattasks_index`` (the row of the task's view) and ``reference`` (the reference answer, for
people). TRL passes every column to the reward functions, so a reward function finds each
completion's conversation through ``chattasks_index`` and grades it with the task. Completions
may be plain text or conversational (a list of messages whose last one is the assistant's).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from chattasks.errors import TaskError
from chattasks.rl.reward import RewardShaping, reward_of
from chattasks.task import Task

INDEX_COLUMN = "chattasks_index"
TASK_COLUMN = "chattasks_task"


def _task(
    task: str | Task, data_dir: str | os.PathLike[str] | None, split_args: dict[str, Any] | None
) -> tuple[str, Task]:
    from chattasks.registry import build_task

    return build_task(task, data_dir=data_dir, **(split_args or {}))


def prompt_rows(
    task: str | Task,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split_args: dict[str, Any] | None = None,
    indices: Sequence[int] | None = None,
    conversational: bool = True,
) -> list[dict[str, Any]]:
    """The prompt rows of a task (see the module docstring): every row, or those of ``indices``."""
    from chattasks.eval.scorers.base import prompt_of, reference_of

    name, built = _task(task, data_dir, split_args)
    rows = []
    for index in range(len(built)) if indices is None else indices:
        conversation = built[index]
        prompt = prompt_of(conversation)
        rows.append(
            {
                "prompt": prompt if conversational else _as_text(prompt),
                TASK_COLUMN: name,
                INDEX_COLUMN: int(index),
                "reference": reference_of(built.locate(index)[0], conversation),
            }
        )
    return rows


def dataset(
    task: str | Task,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split_args: dict[str, Any] | None = None,
    indices: Sequence[int] | None = None,
    conversational: bool = True,
) -> Any:
    """``prompt_rows`` as a ``datasets.Dataset`` (``pip install datasets``)."""
    import datasets

    rows = prompt_rows(
        task, data_dir=data_dir, split_args=split_args, indices=indices, conversational=conversational
    )
    return datasets.Dataset.from_list(rows)


def reward_function(
    task: str | Task,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split_args: dict[str, Any] | None = None,
    shaping: RewardShaping | None = None,
) -> Callable[..., list[float]]:
    """A reward function of TRL's form ``f(prompts, completions, **columns) -> list[float]``.

    It grades each completion with the task, through the ``chattasks_index`` column; with a
    ``log_metric`` callback (GRPOTrainer passes one) it logs the correctness and each shaping
    component's mean apart, so shaped rewards never hide accuracy.
    """
    name, built = _task(task, data_dir, split_args)
    shaping = shaping or RewardShaping()

    def chattasks_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        indices = columns.get(INDEX_COLUMN)
        if indices is None or len(indices) != len(completions):
            raise TaskError(
                f"reward_function({name!r}) needs the {INDEX_COLUMN!r} column of chattasks.rl.dataset() "
                f"beside each completion"
            )
        names = columns.get(TASK_COLUMN)
        if names is not None and any(n != name for n in names):
            raise TaskError(f"reward_function({name!r}) got rows of task {sorted(set(names) - {name})}")
        rewards = [
            reward_of(built.locate(int(index))[0], built[int(index)], completion_text(completion), shaping)
            for index, completion in zip(indices, completions)
        ]
        log_metric = columns.get("log_metric")
        if callable(log_metric) and rewards:
            log_metric(f"chattasks/{name}/correct", sum(r.correct for r in rewards) / len(rewards))
            for component in rewards[0].components:
                log_metric(
                    f"chattasks/{name}/{component}",
                    sum(r.components[component] for r in rewards) / len(rewards),
                )
        return [reward.total for reward in rewards]

    chattasks_reward.__name__ = f"chattasks_{name}".replace("-", "_")
    return chattasks_reward


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the content of the last message of a list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        return content if isinstance(content, str) else "".join(str(part.get("text", "")) for part in content)
    raise TypeError(f"a completion must be text or a list of messages, got {type(completion).__name__}")


def _as_text(messages: Sequence[dict[str, Any]]) -> str:
    """A prompt's messages as plain text (for non-conversational training): the contents joined."""
    return "\n\n".join(str(message["content"]) for message in messages)
