"""nanochat's ChatCORE against a hand computation on a journal built for the purpose.

The journal (written to a real run directory and read back) holds nanochat's five tasks and
SpellingBee, with numbers chosen so that every difference from our centred mean shows: an ARC row
with three letters (our chance is then not 0.25), two samples per generative question with some
solved by one sample only (nanochat's any-sample rule against our mean), and a sixth task that
ChatCORE leaves out.
"""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from chattasks.eval.chatcore import CHATCORE_BASELINES
from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.eval.results import EvalResults, summarize_task

ABCD = ["A", "B", "C", "D"]

# task -> (eval type, samples per question, [(letters or None, [score of each sample])])
JOURNAL = {
    "ARC-Easy": ("categorical", 1, [(ABCD, [1]), (ABCD, [1]), (ABCD, [0]), (["A", "B", "C"], [1])]),
    "ARC-Challenge": ("categorical", 1, [(ABCD, [1]), (ABCD, [0]), (ABCD, [0]), (ABCD, [0])]),
    "MMLU": ("categorical", 1, [(ABCD, [1])] * 5),
    "GSM8K": ("generative", 2, [(None, [1, 1]), (None, [1, 0]), (None, [0, 1]), (None, [0, 0])]),
    "HumanEval": ("generative", 2, [(None, [0, 1]), (None, [0, 0])]),
    "SpellingBee": ("generative", 2, [(None, [1, 1]), (None, [0, 0])]),
}

# By hand. nanochat: fixed baselines, any sample solves, its five tasks only.
NANOCHAT = ((0.75 - 0.25) / 0.75 + (0.25 - 0.25) / 0.75 + 1.0 + 3 / 4 + 1 / 2) / 5  # = 0.583333...
# Ours: chance = mean of 1/letters (ARC-Easy: (3/4 + 1/3) / 4), mean of the samples, all six tasks.
ARC_EASY_CHANCE = (3 * 0.25 + 1 / 3) / 4
OURS = ((0.75 - ARC_EASY_CHANCE) / (1 - ARC_EASY_CHANCE) + 0.0 + 1.0 + 0.5 + 0.25 + 0.5) / 6


def write_journal(run: RunDirectory, names) -> None:
    for name in names:
        _, _, questions = JOURNAL[name]
        run.append(
            name,
            [
                SampleRecord(
                    name, index, sample, [], "", None, None, float(score), None, "generate", letters=letters
                )
                for index, (letters, scores) in enumerate(questions)
                for sample, score in enumerate(scores)
            ],
        )


def results_of(tmp_path, names=tuple(JOURNAL)) -> EvalResults:
    run = RunDirectory(tmp_path / "run")
    write_journal(run, names)
    tasks = {}
    for name in names:
        eval_type, samples, questions = JOURNAL[name]
        records = list(run.read(name).records.values())
        tasks[name] = summarize_task(
            name, eval_type, records, expected=len(questions), num_samples=samples, ks=[1]
        )
    return EvalResults(tasks, {"model": {"model": "m", "backend": "hf"}})


def test_chatcore_matches_the_hand_computation(tmp_path):
    results = results_of(tmp_path)
    assert NANOCHAT == pytest.approx(0.5833333, abs=1e-6)
    assert results.chatcore == pytest.approx(NANOCHAT, abs=1e-12) and results.chatcore_absent is None
    assert results.centered_mean == pytest.approx(OURS, abs=1e-12)
    assert abs(results.chatcore - results.centered_mean) > 0.05  # the two definitions really differ here


def test_a_generative_question_is_solved_by_any_sample(tmp_path):
    results = results_of(tmp_path)
    assert results["GSM8K"].any_pass == 0.75 and results["GSM8K"].accuracy == 0.5
    assert results["MMLU"].any_pass == results["MMLU"].accuracy == 1.0


def test_chatcore_needs_all_five_of_nanochats_tasks(tmp_path):
    assert set(CHATCORE_BASELINES) == {"ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval"}
    results = results_of(tmp_path, ("ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "SpellingBee"))
    assert results.chatcore is None and "not run: HumanEval" in results.chatcore_absent
    payload = results.to_dict()
    assert payload["chatcore"] is None and payload["chatcore_absent"] == "not run: HumanEval"
    console = Console(width=160, record=True)
    console.print(results.table())
    assert "not run: HumanEval" in console.export_text()
    others = EvalResults({"mine": results["SpellingBee"]})  # none of nanochat's tasks: no line in the table
    console.print(others.table())
    assert console.export_text().count("nanochat ChatCORE") == 0
    assert others.to_dict()["chatcore_absent"].startswith("not run: ARC-Easy, ARC-Challenge, MMLU")


def test_results_json_and_the_table_carry_both_numbers(tmp_path):
    results = results_of(tmp_path)
    results.write(tmp_path / "results.json")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["chatcore"] == pytest.approx(NANOCHAT) and payload["centered_mean"] == pytest.approx(OURS)
    again = EvalResults.from_dict(payload)
    assert again.chatcore == pytest.approx(NANOCHAT) and "chatcore" not in again.meta
    console = Console(width=160, record=True)
    console.print(results.table())
    text = console.export_text()
    assert f"{NANOCHAT:.4f}" in text and f"{OURS:.4f}" in text and "nanochat ChatCORE" in text
