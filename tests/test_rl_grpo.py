"""A few real GRPOTrainer steps (TRL) on CPU with the embedded SmolLM2: the rewards it logs are chattasks' grades."""

from __future__ import annotations

import pytest

from chattasks.rl import completion_text, dataset, reward_function

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def smollm2_folder():
    """The embedded model as a transformers folder (the hf backend's converted copy)."""
    pytest.importorskip("trl")
    from chattasks.eval.backends.hf import HFBackend
    from chattasks.eval.backends.hf_model import converted_dir, default_model_path, is_complete_copy

    backend = HFBackend(dtype="float32")
    folder = converted_dir(default_model_path(), backend.dtype)
    backend.close()
    if folder is None or not is_complete_copy(folder):
        pytest.skip("no converted copy of the embedded model could be written")
    return folder


def test_grpo_trainer_logs_the_rewards_chattasks_grades(smollm2_folder, memory_tasks, tmp_path):
    from memory_tasks import MemoryGSM8K
    from trl import GRPOConfig, GRPOTrainer

    task = MemoryGSM8K()
    grade = reward_function("mem-GSM8K")
    calls: list[tuple[list[int], list[str], list[float]]] = []

    def recorded(prompts, completions, **columns):
        values = grade(prompts, completions, **columns)
        calls.append((list(columns["chattasks_index"]), [completion_text(c) for c in completions], values))
        return values

    recorded.__name__ = "chattasks_gsm8k"
    config = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=24,
        max_steps=2,
        learning_rate=1e-6,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=7,
    )
    trainer = GRPOTrainer(
        model=str(smollm2_folder),
        reward_funcs=[recorded],
        args=config,
        train_dataset=dataset("mem-GSM8K", indices=range(8)),
    )
    trainer.train()

    assert len(calls) == 2  # one reward call per step
    for indices, texts, values in calls:
        assert len(texts) == 4
        assert values == [float(task.evaluate(task[i], text)) for i, text in zip(indices, texts)]
    logged = [
        entry["rewards/chattasks_gsm8k/mean"]
        for entry in trainer.state.log_history
        if "rewards/chattasks_gsm8k/mean" in entry
    ]
    assert logged == pytest.approx([sum(values) / len(values) for _, _, values in calls])
