"""Reinforcement learning from the same graders: rewards, TRL adapters and rollouts.

``reward_of`` / ``RewardShaping`` (``rl.reward``), ``dataset`` / ``prompt_rows`` /
``reward_function`` for TRL's GRPOTrainer (``rl.trl``), and ``rollouts`` on any backend
(``rl.rollouts``). Importing this package is cheap; TRL and datasets are imported when used.
"""

from chattasks.rl.reward import COMPONENTS, Reward, RewardShaping, reward_of
from chattasks.rl.rollouts import RolloutGroup, advantages_of, rollouts
from chattasks.rl.trl import completion_text, dataset, prompt_rows, reward_function

__all__ = [
    "COMPONENTS",
    "Reward",
    "RewardShaping",
    "RolloutGroup",
    "advantages_of",
    "completion_text",
    "dataset",
    "prompt_rows",
    "reward_function",
    "reward_of",
    "rollouts",
]
