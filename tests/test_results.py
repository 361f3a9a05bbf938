"""Results: Wilson intervals, the centred mean, per-task counts, results.json, the table."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from chattasks.eval.record import Failure, SampleRecord
from chattasks.eval.results import EvalResults, centered, summarize_task, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # computed by hand another way: the two roots p of (successes/n - p)² = z² p (1 - p) / n, z = 1.959964
        (0, 10, 0.0, 0.277533),
        (1, 10, 0.017876, 0.404150),
        (5, 10, 0.236593, 0.763407),
        (10, 10, 0.722467, 1.0),
        (23, 100, 0.158433, 0.321544),
        (1, 1, 0.206549, 1.0),
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes, n, low, high):
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(low, abs=1e-6) and hi == pytest.approx(high, abs=1e-6)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(2.5, 5)  # fractional successes: mean scores over samples
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_interval(6, 5)


def test_centered_accuracy():
    assert centered(0.25, 0.25) == 0.0
    assert centered(1.0, 0.25) == 1.0
    assert centered(0.5, 0.25) == pytest.approx(1 / 3)
    assert centered(0.1, 0.25) == pytest.approx(-0.2)
    assert centered(0.3, 0.0) == 0.3
    with pytest.raises(ValueError, match="chance"):
        centered(0.5, 1.0)


def rec(index, score, sample=0, failure=None, method="generate", **extra) -> SampleRecord:
    """A journal record with only what results read filled in."""
    return SampleRecord(
        task="T",
        index=index,
        sample=sample,
        prompt=[],
        response="",
        extracted=None,
        reference=None,
        score=score,
        failure=Failure(failure) if failure else None,
        method=method,
        **extra,
    )


def mc(index, score, letters=("A", "B", "C", "D"), method="logits", **extra) -> SampleRecord:
    return rec(index, score, letters=list(letters), method=method, **extra)


def test_categorical_summary_counts_failures_and_chance():
    records = [
        mc(0, 1.0),
        mc(1, 0.0, failure="not_a_letter"),
        mc(2, 1.0, letters=("1", "2", "3", "4", "5")),
        mc(3, 0.0, method="completion"),
    ]
    result = summarize_task("ARC-Easy", "categorical", records, expected=5)
    assert (result.n, result.expected, result.missing) == (4, 5, 1)
    assert result.accuracy == 0.5 and result.correct == 2.0
    assert result.chance == pytest.approx((0.25 * 3 + 0.2) / 4)
    assert result.centered == pytest.approx((0.5 - result.chance) / (1 - result.chance))
    assert result.failures == {"not_a_letter": 1} and result.failure_count == 1
    assert result.methods == {"completion": 1, "logits": 3}
    assert result.ci95 == wilson_interval(2, 4)
    assert result.acc_norm is None


def test_loglik_summary_reports_acc_norm():
    records = [mc(i, float(i % 2), score_norm=1.0, method="loglik") for i in range(4)]
    result = summarize_task("ARC-Easy", "categorical", records, expected=4)
    assert result.accuracy == 0.5 and result.acc_norm == 1.0
    assert result.acc_norm_ci95 == wilson_interval(4, 4)


def test_generative_summary_with_samples_gives_pass_at_k():
    records = [
        rec(q, float(correct), sample=s, failure=None if correct else "no_answer")
        for q, pattern in enumerate([(1, 0, 0, 0), (1, 1, 1, 1), (0, 0, 0, 0)])
        for s, correct in enumerate(pattern)
    ]
    records.append(rec(3, 1.0))  # an unfinished question: not counted
    result = summarize_task("GSM8K", "generative", records, expected=4, num_samples=4, ks=(1, 2, 8))
    assert (result.n, result.samples, result.missing) == (3, 12, 1)
    assert result.accuracy == pytest.approx((0.25 + 1 + 0) / 3)
    assert result.pass_at_k["pass@1"] == pytest.approx(result.accuracy)
    assert result.pass_at_k["pass@2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert "pass@8" not in result.pass_at_k  # cannot be estimated from 4 samples
    assert result.chance == 0.0 and result.centered == result.accuracy
    assert result.failures == {"no_answer": 7}


def test_records_outside_the_run_are_ignored():
    records = [mc(0, 1.0), mc(7, 1.0), mc(1, 1.0).replace(sample=3)]
    result = summarize_task("MMLU", "categorical", records, expected=2)
    assert result.n == 1 and result.missing == 1


def test_an_empty_task_has_no_accuracy():
    result = summarize_task("MMLU", "categorical", [], expected=3)
    assert result.accuracy is None and result.centered is None and result.ci95 == (0.0, 1.0)


def results_of_two_tasks() -> EvalResults:
    arc = summarize_task(
        "ARC-Easy", "categorical", [mc(0, 1.0), mc(1, 1.0)], expected=2, fingerprint="ab" * 32
    )
    gsm = summarize_task("GSM8K", "generative", [rec(0, 0.5)], expected=1)
    return EvalResults(
        {"ARC-Easy": arc, "GSM8K": gsm}, {"model": {"backend": "hf", "model": "m"}, "seed": 42}
    )


def test_centred_mean_averages_the_tasks():
    results = results_of_two_tasks()
    assert results.centered_mean == pytest.approx((1.0 + 0.5) / 2)
    assert results.complete


def test_results_json_round_trips(tmp_path):
    results = results_of_two_tasks()
    results.write(tmp_path / "results.json")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["centered_mean"] == pytest.approx(0.75) and payload["complete"] is True
    assert payload["tasks"]["ARC-Easy"]["ci95"] == list(wilson_interval(2, 2))
    assert payload["tasks"]["ARC-Easy"]["fingerprint"] == "ab" * 32 and payload["seed"] == 42
    again = EvalResults.from_dict(payload)
    assert again.tasks == results.tasks and again.meta == results.meta


def test_the_table_shows_every_task_and_the_centred_mean():
    console = Console(width=140, record=True)
    console.print(results_of_two_tasks().table())
    text = console.export_text()
    for needle in ("ARC-Easy", "GSM8K", "centred mean", "0.7500", "1.0000", "m (hf)"):
        assert needle in text
