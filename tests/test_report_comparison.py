"""chattasks.report.comparison: the report's comparison table carries chattasks compare's statistics.

Every p-value is checked against scipy's exact binomial test on the flipped questions, Holm's
adjustment is recomputed here, and the intervals and centred means against ``compare_runs``
reading the same run directories from disk.
"""

from __future__ import annotations

import re

import pytest
from report_runs import MEMORY_TASKS, make_run

from chattasks.eval.compare import compare_runs
from chattasks.eval.journal import RunDirectory
from chattasks.report import load_runs, pair_runs, render_report
from chattasks.report.comparison import (
    compare_report_runs,
    comparison_table,
    fmt_difference_interval,
    fmt_p,
)
from chattasks.report.context import fmt, fmt_signed

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.fixture
def three(memory_tasks, tmp_path):
    return [make_run(tmp_path / name, seed) for name, seed in (("a", 1), ("b", 2), ("c", 3))]


def cells(row):
    return {cell.field: cell for cell in row}


def correct(run, task):
    return {r.index: r.score == 1.0 for r in RunDirectory(run).read(task).records.values()}


def holm(p_values):
    """Holm's step-down adjustment, written out: sort, multiply by (m - rank), keep monotone, cap at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_each_task_row_shows_the_exact_mcnemar_p_and_its_holm_adjustment(three):
    runs = load_runs(three)
    pairs, _ = pair_runs(runs)
    table = comparison_table(runs, pairs, compare_report_runs(runs))
    assert table.columns[6:9] == ["95% CI of Δ", "p", "p (Holm)"]
    for other in (1, 2):
        expected_p = {}
        for task in MEMORY_TASKS:
            first, second = correct(three[0], task), correct(three[other], task)
            gained = sum(second[i] and not first[i] for i in first)
            lost = sum(first[i] and not second[i] for i in first)
            expected_p[task] = (
                scipy_stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
            )
        adjusted = dict(zip(MEMORY_TASKS, holm([expected_p[t] for t in MEMORY_TASKS]), strict=True))
        for task in MEMORY_TASKS:
            row = cells(dict(table.rows)[f"{task}|{other}"])
            assert row["p"].sort == pytest.approx(expected_p[task], rel=1e-9)
            assert row["p"].text == fmt_p(expected_p[task])
            assert row["p"].title == "McNemar's exact test"
            assert row["p_holm"].sort == pytest.approx(adjusted[task], rel=1e-9)


def test_intervals_and_centred_means_equal_compare_runs_on_the_same_directories(three):
    runs = load_runs(three)
    pairs, _ = pair_runs(runs)
    table = comparison_table(runs, pairs, compare_report_runs(runs))
    reference = compare_runs(three)  # read again from disk, independently of the report's records
    footers = dict(table.footers)
    assert list(footers) == ["overall|1", "overall|2"]
    for other, comparison in enumerate(reference.comparisons, start=1):
        for task, compared in comparison.tasks.items():
            row = cells(dict(table.rows)[f"{task}|{other}"])
            assert row["ci95"].text == fmt_difference_interval(compared.ci95)
            assert row["ci95"].title == "Newcombe's paired score interval"
            assert row["delta"].text == fmt_signed(compared.difference)
            low, high = compared.ci95
            assert low <= compared.difference <= high
        overall = cells(footers[f"overall|{other}"])
        assert overall["task"].text == "centred mean"
        assert overall["base_accuracy"].text == fmt(comparison.overall.baseline)
        assert overall["other_accuracy"].text == fmt(comparison.overall.candidate)
        assert overall["ci95"].text == fmt_difference_interval(comparison.overall.ci95)
        assert overall["p"].text == fmt_p(comparison.overall.p_value)
        assert "seed 42" in overall["ci95"].title and "10,000 resamples" in overall["ci95"].title


def test_runs_of_different_limits_are_tested_on_the_questions_both_answered(memory_tasks, tmp_path):
    short, full = make_run(tmp_path / "short", 1, limit=15), make_run(tmp_path / "full", 2)
    runs = load_runs([short, full])
    pairs, _ = pair_runs(runs)
    table = comparison_table(runs, pairs, compare_report_runs(runs))
    for task in MEMORY_TASKS:
        row = cells(dict(table.rows)[f"{task}|1"])
        assert row["n"].sort == 15
        first, second = correct(short, task), correct(full, task)
        gained = sum(second[i] and not first[i] for i in range(15))
        lost = sum(first[i] and not second[i] for i in range(15))
        expected = scipy_stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
        assert row["p"].sort == pytest.approx(expected, rel=1e-9)


def test_identical_runs_show_no_difference_and_p_one(memory_tasks, tmp_path):
    same = [make_run(tmp_path / "a", 1), make_run(tmp_path / "b", 1)]
    runs = load_runs(same)
    pairs, _ = pair_runs(runs)
    table = comparison_table(runs, pairs, compare_report_runs(runs))
    for _, row in table.rows:
        found = cells(row)
        assert found["delta"].text == "+0.0000" and found["p"].text == "1"
        assert found["gained"].text == found["lost"].text == "0" and found["p_holm"].css == ""
    overall = cells(dict(table.footers)["overall|1"])
    assert overall["delta"].text == "+0.0000" and overall["ci95"].text == "+0.0000 to +0.0000"


def test_the_rendered_page_names_the_methods_and_a_single_run_has_no_comparison(three):
    runs = load_runs(three)
    page = render_report(runs)
    section = page[
        page.index('<section id="comparison">') : page.index("</section>", page.index('id="comparison"'))
    ]
    assert "McNemar" in section and "Newcombe" in section and "Holm" in section and "seed 42" in section
    assert len(re.findall(r'<tr data-key="overall\|\d">', section)) == 2
    assert compare_report_runs(runs[:1]) is None
    assert '<section id="comparison">' not in render_report(runs[:1])


def test_p_values_are_shown_to_three_significant_digits():
    assert fmt_p(None) == "–"
    assert fmt_p(1.0) == "1"
    assert fmt_p(0.0123456) == "0.0123"
    assert fmt_p(0.00004) == "<0.0001"
    assert fmt_difference_interval((-0.01234, 0.2)) == "-0.0123 to +0.2000"
