"""chattasks compare: paired statistics checked against scipy and hand computations, on run
directories built for the purpose (run.json + journals) and on runs of the real runner."""

from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.errors import IncomparableRuns, RunDirError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.compare import Kind, Method, compare_runs
from chattasks.eval.gate import Gate, check_gates
from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.eval.runner import evaluate_model
from chattasks.eval.scorers.base import reference_of
from chattasks.eval.settings import RunSettings, create_run

scipy_stats = pytest.importorskip("scipy.stats")
runner = CliRunner()
LETTERS = ["A", "B", "C", "D"]


# ----- building runs -------------------------------------------------------------------------------
def record(task: str, index: int, score: float, sample: int = 0, **extra: Any) -> SampleRecord:
    """A journal record with what comparing reads (a multiple-choice one when letters are given)."""
    return SampleRecord(
        task=task,
        index=index,
        sample=sample,
        prompt=[{"role": "user", "content": f"question {index}"}],
        response="",
        extracted=None,
        reference=None,
        score=score,
        failure=None,
        method="generate",
        **extra,
    )


def make_run(
    path,
    tasks: dict[str, list[SampleRecord]],
    *,
    fingerprints: dict[str, str] | None = None,
    limit: int | None = None,
    num_samples: int = 1,
    model: str | None = "m",
) -> RunDirectory:
    """A run directory as chattasks eval leaves it: run.json (real writer) and one journal per task."""
    run = RunDirectory(path)
    generation = GenerationConfig(temperature=0.7 if num_samples > 1 else 0.0, num_samples=num_samples)
    settings = RunSettings(model, "callable", list(tasks), limit, "letter", generation)
    prints = {name: "f" * 64 for name in tasks} if fingerprints is None else fingerprints
    create_run(run, settings, prints, {}, [1])
    for name, records in tasks.items():
        run.append(name, records, fsync=False)
    return run


def binary(task: str, scores: list[int], letters: bool = True) -> list[SampleRecord]:
    extra = {"letters": LETTERS} if letters else {}
    return [record(task, i, float(s), **extra) for i, s in enumerate(scores)]


def table_scores(both: int, lost: int, gained: int, neither: int) -> tuple[list[int], list[int]]:
    """Per-question 0/1 scores of A and B with the given paired 2x2 table, interleaved."""
    pairs = [(1, 1)] * both + [(1, 0)] * lost + [(0, 1)] * gained + [(0, 0)] * neither
    order = np.random.default_rng(7).permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


# ----- independent references ----------------------------------------------------------------------
def newcombe_reference(e: int, f: int, g: int, h: int) -> tuple[float, float]:
    """Newcombe (1998) method 10 in the paper's notation: e = both right, f = first right only,
    g = second right only, h = neither; interval of p1 - p2 (first minus second), Wilson limits
    from scipy."""
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n

    def wilson(k: int) -> tuple[float, float]:
        ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        return ci.low, ci.high

    (l1, u1), (l2, u2) = wilson(e + f), wilson(e + g)
    product = (e + f) * (g + h) * (e + g) * (f + h)
    a = e * h - f * g
    if product == 0:
        phi = 0.0
    elif a > n / 2:
        phi = (a - n / 2) / math.sqrt(product)
    elif a < 0:
        phi = a / math.sqrt(product)
    else:
        phi = 0.0
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    upper = d + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return lower, upper


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm: the i-th smallest p times (m - i + 1), made non-decreasing, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    previous = 0.0
    for rank, i in enumerate(order):
        previous = max(previous, min(1.0, (m - rank) * p[i]))
        adjusted[i] = previous
    return adjusted


# ----- the statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lost", "gained"), [(0, 1), (1, 1), (0, 5), (3, 9), (9, 3), (50, 50), (17, 30), (400, 460), (2000, 2150)]
)
def test_mcnemar_is_scipys_exact_binomial_test(lost, gained):
    from chattasks.eval.stats import mcnemar_exact

    expected = scipy_stats.binomtest(gained, lost + gained, 0.5).pvalue
    assert mcnemar_exact(lost, gained) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_by_exact_binomial_sums():
    from chattasks.eval.stats import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: nothing against "no difference"
    assert mcnemar_exact(0, 5) == 2 / 32
    # 3 lost, 9 gained: 2 * sum_{i<=3} C(12, i) / 2^12
    assert mcnemar_exact(3, 9) == float(Fraction(2 * sum(math.comb(12, i) for i in range(4)), 2**12))
    assert mcnemar_exact(7, 7) == 1.0


def test_newcombe_interval_matches_the_published_example():
    """Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8: Cavo et
    al. (2012), 59/6/16/80 -> -0.0621 (95% CI -0.1186 to -0.0046) for the row minus the column."""
    from chattasks.eval.stats import newcombe_paired_interval

    # the row variable is our candidate B (right in 59 + 6), the column our baseline A (59 + 16)
    lower, upper = newcombe_paired_interval(both=59, lost=16, gained=6, neither=80)
    assert (round(lower, 4), round(upper, 4)) == (-0.1186, -0.0046)


@pytest.mark.parametrize(
    "table",
    [(59, 16, 6, 80), (20, 3, 11, 6), (10, 0, 0, 0), (0, 0, 0, 10), (5, 0, 0, 5), (0, 1, 0, 0), (0, 0, 1, 0),
     (1, 0, 0, 0), (3, 4, 2, 1), (0, 12, 0, 0), (120, 40, 70, 270), (2, 0, 9, 0)],
)  # fmt: skip
def test_newcombe_interval_against_an_independent_computation(table):
    from chattasks.eval.stats import newcombe_paired_interval

    both, lost, gained, neither = table
    lower, upper = newcombe_paired_interval(both, lost, gained, neither)
    # Newcombe's "first" proportion is our candidate: first right only = gained
    ref_lower, ref_upper = newcombe_reference(both, gained, lost, neither)
    assert lower == pytest.approx(ref_lower, abs=1e-9) and upper == pytest.approx(ref_upper, abs=1e-9)
    difference = (gained - lost) / sum(table)
    assert -1 <= lower <= difference <= upper <= 1


def test_regularized_beta_and_t_distribution_match_scipy():
    from chattasks.eval.stats import regularized_beta, t_quantile, t_sf

    special = pytest.importorskip("scipy.special")
    for a, b, x in [(0.5, 0.5, 0.3), (2, 3, 0.4), (10, 0.5, 0.99), (0.5, 40, 0.01), (300, 0.5, 0.999)]:
        assert regularized_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-12)
    for df in (1, 2, 3, 7, 30, 499, 14041):
        for t in (0.0, 0.05, 0.7, 1.96, 3.5, 12.0):
            assert t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-8)
            assert t_sf(-t, df) == pytest.approx(scipy_stats.t.sf(-t, df), rel=1e-8)
        assert t_quantile(0.975, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1e-9)


@pytest.mark.parametrize("n", [2, 3, 10, 60, 800])
def test_paired_t_matches_scipy_ttest_rel(n):
    from chattasks.eval.stats import paired_t

    rng = np.random.default_rng(n)
    a = rng.integers(0, 5, n) / 4  # means over 4 samples, as pass@1 per question
    b = np.clip(a + rng.integers(-2, 3, n) / 4, 0, 1)
    if np.all(b - a == (b - a)[0]):
        b[0] = 1 - b[0]
    result = paired_t(list(b - a))
    reference = scipy_stats.ttest_rel(b, a)
    ci = reference.confidence_interval(0.95)
    assert result is not None and result.df == n - 1
    assert result.t == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert result.ci95 == pytest.approx((ci.low, ci.high), rel=1e-8)


def test_paired_t_degenerate_cases():
    from chattasks.eval.stats import paired_t

    assert paired_t([]) is None and paired_t([0.5]) is None  # one question: no spread, no test
    same = paired_t([0.0, 0.0, 0.0])
    assert same is not None and same.p_value == 1.0 and same.ci95 == (0.0, 0.0)
    shifted = paired_t([0.25, 0.25, 0.25])
    assert shifted is not None and shifted.p_value == 0.0 and shifted.ci95 == (0.25, 0.25)


def test_holm_against_a_hand_computation():
    from chattasks.eval.stats import holm

    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1) -> 0.02, 0.03, 0.06, max(0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])
    assert holm([0.6, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([]) == [] and holm([None]) == [None]
    p = list(np.random.default_rng(3).random(9) ** 3)
    assert holm(p) == pytest.approx(holm_by_hand(p))


def test_bootstrap_of_a_mean_has_the_sampling_spread():
    from chattasks.eval.stats import bootstrap_mean, bootstrap_p

    values = np.random.default_rng(1).choice([-1.0, 0.0, 1.0], size=400, p=[0.2, 0.5, 0.3])
    draws = bootstrap_mean(values, 20_000, np.random.default_rng(2))
    assert draws.mean() == pytest.approx(values.mean(), abs=0.002)
    assert draws.std() == pytest.approx(values.std() / math.sqrt(values.size), rel=0.03)
    assert bootstrap_p(np.zeros(999)) == 1.0
    assert bootstrap_p(np.ones(999)) == 2 / 1000  # none on the other side: (0 + 1) / (999 + 1), twice


# ----- comparing runs ------------------------------------------------------------------------------
def test_binary_task_gets_mcnemar_and_newcombe(tmp_path):
    a, b = table_scores(both=20, lost=3, gained=11, neither=6)
    make_run(tmp_path / "a", {"T": binary("T", a)})
    make_run(tmp_path / "b", {"T": binary("T", b)})
    report = compare_runs([tmp_path / "a", tmp_path / "b"])
    task = report.comparisons[0].tasks["T"]
    assert task.kind is Kind.BINARY and task.test is Method.MCNEMAR_EXACT
    assert task.interval is Method.NEWCOMBE_PAIRED
    assert task.n == 40 and (task.gained, task.lost, task.ties) == (11, 3, 26)
    assert task.gained_indexes == [i for i in range(40) if b[i] > a[i]]
    assert task.lost_indexes == [i for i in range(40) if b[i] < a[i]]
    assert task.baseline.accuracy == 23 / 40 and task.candidate.accuracy == 31 / 40
    assert task.difference == pytest.approx(8 / 40)
    assert task.p_value == pytest.approx(scipy_stats.binomtest(11, 14, 0.5).pvalue, rel=1e-12)
    assert task.p_holm == task.p_value  # one task: nothing to adjust
    assert task.ci95 == pytest.approx(newcombe_reference(20, 11, 3, 6), abs=1e-9)
    assert task.chance == 0.25 and task.centered_difference == pytest.approx(0.2 / 0.75)
    assert task.same_data is True and task.notes == []


def test_several_samples_per_question_get_the_paired_t_test(tmp_path):
    rng = np.random.default_rng(11)
    solved_a = rng.integers(0, 5, 30)
    solved_b = np.clip(solved_a + rng.integers(-1, 3, 30), 0, 4)

    def journal(solved) -> list[SampleRecord]:
        return [record("G", i, float(s < k), sample=s) for i, k in enumerate(solved) for s in range(4)]

    make_run(tmp_path / "a", {"G": journal(solved_a)}, num_samples=4)
    make_run(tmp_path / "b", {"G": journal(solved_b)}, num_samples=4)
    task = compare_runs([tmp_path / "a", tmp_path / "b"]).comparisons[0].tasks["G"]
    a, b = solved_a / 4, solved_b / 4
    reference = scipy_stats.ttest_rel(b, a)
    ci = reference.confidence_interval(0.95)
    assert task.kind is Kind.CONTINUOUS and task.test is Method.PAIRED_T and task.interval is Method.PAIRED_T
    assert task.baseline.samples_per_question == 4
    assert task.baseline.accuracy == pytest.approx(a.mean()) and task.candidate.accuracy == pytest.approx(
        b.mean()
    )
    assert task.difference == pytest.approx((b - a).mean())
    assert task.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert task.ci95 == pytest.approx((ci.low, ci.high), rel=1e-8)
    assert (task.gained, task.lost) == (int(np.sum(b > a)), int(np.sum(b < a)))
    assert task.chance == 0.0  # generative: no letters


def tasks_with_known_tables(tmp_path) -> dict[str, tuple[int, int, int, int]]:
    tables = {"T1": (30, 2, 9, 9), "T2": (25, 6, 4, 15), "T3": (10, 1, 7, 2), "T4": (40, 0, 0, 10)}
    runs: dict[str, dict[str, list[SampleRecord]]] = {"a": {}, "b": {}}
    for name, table in tables.items():
        a, b = table_scores(*table)
        runs["a"][name], runs["b"][name] = binary(name, a), binary(name, b)
    make_run(tmp_path / "a", runs["a"])
    make_run(tmp_path / "b", runs["b"])
    return tables


def test_p_values_are_holm_adjusted_across_tasks(tmp_path):
    tables = tasks_with_known_tables(tmp_path)
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"]).comparisons[0]
    raw = [
        scipy_stats.binomtest(t[2], t[1] + t[2], 0.5).pvalue if t[1] + t[2] else 1.0 for t in tables.values()
    ]
    assert [task.p_value for task in comparison.tasks.values()] == pytest.approx(raw, rel=1e-12)
    assert [task.p_holm for task in comparison.tasks.values()] == pytest.approx(holm_by_hand(raw), rel=1e-12)


def test_overall_centred_mean_and_its_bootstrap(tmp_path):
    tables = tasks_with_known_tables(tmp_path)
    report = compare_runs([tmp_path / "a", tmp_path / "b"], resamples=20_000)
    overall = report.comparisons[0].overall
    centred = {
        name: ((e + f) / sum(t) - 0.25, (e + g) / sum(t) - 0.25)
        for name, t in tables.items()
        for e, f, g, _ in [t]
    }
    assert overall.tasks == list(tables)
    assert overall.baseline == pytest.approx(np.mean([a for a, _ in centred.values()]) / 0.75)
    assert overall.candidate == pytest.approx(np.mean([b for _, b in centred.values()]) / 0.75)
    assert overall.difference == pytest.approx(overall.candidate - overall.baseline)
    # the bootstrap spread is the analytic one: sqrt(sum_t var_t / n_t) / T (variances over questions)
    variances = []
    for t in tables.values():
        d = np.array([0] * t[0] + [-1] * t[1] + [1] * t[2] + [0] * t[3]) / 0.75
        variances.append(d.var() / d.size)
    se = math.sqrt(sum(variances)) / len(tables)
    low, high = overall.ci95
    assert (high - low) / (2 * 1.959964) == pytest.approx(se, rel=0.05)
    assert low < overall.difference < high
    assert overall.p_value < 0.05 and low > 0  # 16 more right than wrong over 170 questions
    again = compare_runs([tmp_path / "a", tmp_path / "b"], resamples=20_000).comparisons[0].overall
    assert again.ci95 == overall.ci95 and again.p_value == overall.p_value  # a fixed seed
    other = compare_runs([tmp_path / "a", tmp_path / "b"], resamples=20_000, seed=5).comparisons[0].overall
    assert other.ci95 != overall.ci95 and other.ci95 == pytest.approx(overall.ci95, abs=0.01)
    assert report.seed == 42 and report.resamples == 20_000


def test_a_run_against_itself_is_all_ties(tmp_path):
    a, _ = table_scores(12, 0, 0, 8)
    make_run(tmp_path / "a", {"T": binary("T", a), "G": [record("G", i, 0.5) for i in range(5)]})
    comparison = compare_runs([tmp_path / "a", tmp_path / "a"]).comparisons[0]
    for task in comparison.tasks.values():
        assert task.difference == 0 and task.p_value == 1.0 and task.gained == task.lost == 0
        assert task.ci95[0] <= 0 <= task.ci95[1]
    assert comparison.tasks["G"].kind is Kind.CONTINUOUS  # a score of 0.5 is not 0/1
    assert comparison.overall.difference == 0 and comparison.overall.p_value == 1.0
    assert comparison.overall.ci95 == (0.0, 0.0)


def test_a_single_question_and_an_empty_task(tmp_path):
    make_run(tmp_path / "a", {"one": binary("one", [0]), "cont": [record("cont", 0, 0.25)], "empty": []})
    make_run(tmp_path / "b", {"one": binary("one", [1]), "cont": [record("cont", 0, 0.75)], "empty": []})
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"]).comparisons[0]
    one, cont, empty = (comparison.tasks[name] for name in ("one", "cont", "empty"))
    assert one.kind is Kind.BINARY and one.n == 1 and one.difference == 1.0
    assert one.p_value == scipy_stats.binomtest(1, 1, 0.5).pvalue == 1.0
    assert one.ci95 == pytest.approx(newcombe_reference(0, 1, 0, 0), abs=1e-9)
    assert (
        cont.kind is Kind.CONTINUOUS and cont.difference == 0.5 and cont.p_value is None and cont.ci95 is None
    )
    assert "one paired question: no test" in cont.notes
    assert empty.kind is Kind.EMPTY and empty.n == 0 and empty.difference is None
    assert empty.baseline.accuracy is None and empty.p_value is None and empty.p_holm is None
    assert comparison.overall.tasks == ["one", "cont"]
    json.dumps(compare_runs([tmp_path / "a", tmp_path / "b"]).to_dict())  # every value JSON-ready


def test_questions_and_samples_in_one_run_only_are_reported(tmp_path):
    a = [record("G", i, 1.0, sample=s) for i in range(6) for s in range(2)]
    b = [record("G", i, float(i % 2), sample=s) for i in range(2, 9) for s in range(2)]
    b.append(record("G", 9, 1.0, sample=0))  # question 9: one of its two samples
    make_run(tmp_path / "a", {"G": a}, num_samples=2)
    make_run(tmp_path / "b", {"G": b}, num_samples=2)
    task = compare_runs([tmp_path / "a", tmp_path / "b"]).comparisons[0].tasks["G"]
    assert task.n == 4  # questions 2..5
    assert (task.baseline.questions, task.baseline.unpaired, task.baseline.samples_only) == (6, 2, 4)
    assert (task.candidate.questions, task.candidate.unpaired, task.candidate.samples_only) == (7, 3, 7)
    assert (task.baseline.incomplete, task.candidate.incomplete) == (0, 1)
    assert "questions completed by one run only: 2 baseline, 3 candidate" in task.notes
    assert "samples journaled by one run only: 4 baseline, 7 candidate" in task.notes
    assert "incomplete questions (some samples missing): 0 baseline, 1 candidate" in task.notes


def test_different_data_is_refused_naming_the_task(tmp_path):
    make_run(tmp_path / "a", {"T": binary("T", [1, 0, 1, 1])}, fingerprints={"T": "a" * 64}, limit=4)
    make_run(tmp_path / "b", {"T": binary("T", [1, 1, 0, 1, 0, 0])}, fingerprints={"T": "b" * 64}, limit=6)
    with pytest.raises(IncomparableRuns, match=r"task T: .* evaluated different data"):
        compare_runs([tmp_path / "a", tmp_path / "b"])
    result = invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "task T:" in errors[0]
    assert "--allow-different-data" in errors[0]
    task = compare_runs([tmp_path / "a", tmp_path / "b"], allow_different_data=True).comparisons[0].tasks["T"]
    assert task.n == 4 and task.same_data is False  # the limit of a: indexes 0..3
    assert (task.gained, task.lost) == (1, 1) and task.candidate.unpaired == 2  # b's 4 and 5
    assert "data differ: compared the 4 question indexes both runs completed" in task.notes


def test_tasks_in_one_run_only_and_acc_norm(tmp_path):
    norm = [record("L", i, 1.0, letters=LETTERS, score_norm=float(i % 2)) for i in range(6)]
    make_run(tmp_path / "a", {"L": norm, "T": binary("T", [1, 0]), "X": binary("X", [1])})
    make_run(tmp_path / "b", {"L": norm, "T": binary("T", [1, 1]), "Y": binary("Y", [1])})
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"], metric="acc_norm").comparisons[0]
    assert comparison.only_baseline == ["X"] and comparison.only_candidate == ["Y"]
    assert comparison.tasks["L"].baseline.accuracy == 0.5  # acc_norm, not acc (1.0)
    assert comparison.skipped == {"T": f"no acc_norm in {tmp_path / 'a'}, {tmp_path / 'b'}"}
    with pytest.raises(ValueError, match="metric"):
        compare_runs([tmp_path / "a", tmp_path / "b"], metric="f1")


def test_runs_are_named_by_their_model(tmp_path):
    make_run(tmp_path / "a", {"T": binary("T", [1])}, model="named")
    make_run(tmp_path / "b", {"T": binary("T", [1])}, model=None)
    (tmp_path / "b" / "results.json").write_text(json.dumps({"tasks": {}, "model": {"model": "embedded"}}))
    report = compare_runs([tmp_path / "a", tmp_path / "b"])
    assert [(run.model, run.backend) for run in report.runs] == [
        ("named", "callable"),
        ("embedded", "callable"),
    ]
    assert report.baseline.path == str(tmp_path / "a")


def test_usage_errors(tmp_path):
    make_run(tmp_path / "a", {"T": binary("T", [1])})
    with pytest.raises(ValueError, match="at least two runs"):
        compare_runs([tmp_path / "a"])
    with pytest.raises(RunDirError, match="does not exist"):
        compare_runs([tmp_path / "a", tmp_path / "nothing"])
    assert invoke("compare", str(tmp_path / "a")).exit_code == 2
    assert invoke("compare", str(tmp_path / "a"), str(tmp_path / "nothing")).exit_code == 1
    assert invoke("compare", str(tmp_path / "a"), str(tmp_path / "a"), "--tasks", "Z").exit_code == 2


# ----- the command ---------------------------------------------------------------------------------
def worse_runs(tmp_path) -> None:
    """B lost 14 of 60 ARC-like questions and gained 1 (McNemar p = 0.0010); the rest unchanged."""
    a, b = table_scores(both=30, lost=14, gained=1, neither=15)
    same, _ = table_scores(20, 0, 0, 20)
    make_run(tmp_path / "a", {"T": binary("T", a), "S": binary("S", same)}, model="base")
    make_run(tmp_path / "b", {"T": binary("T", b), "S": binary("S", same)}, model="new")


def test_the_table(tmp_path, monkeypatch):
    from chattasks.cli.console import console

    monkeypatch.setattr(console, "width", 160)
    worse_runs(tmp_path)
    result = invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    task = compare_runs([tmp_path / "a", tmp_path / "b"]).comparisons[0].tasks["T"]
    row = next(line for line in result.output.splitlines() if line.startswith(" T "))
    for text in ("60", "0.733", "0.517", "-0.217", f"{task.ci95[0]:+.3f}, {task.ci95[1]:+.3f}",
                 f"{task.p_value:.4f}", f"{task.p_holm:.4f}", "+1/−14"):  # fmt: skip
        assert text in row, (text, row)
    assert "A (baseline): " in result.output and "— base (callable)" in result.output
    assert "overall" in result.output and "seed 42" in result.output and "McNemar" in result.output


def test_json_output_is_the_library_report(tmp_path):
    worse_runs(tmp_path)
    result = invoke("compare", "--json", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    expected = compare_runs([tmp_path / "a", tmp_path / "b"]).to_dict()
    assert payload == {**json.loads(json.dumps(expected)), "failed_checks": []}
    task = payload["comparisons"][0]["tasks"]["T"]
    assert (
        task["kind"] == "binary"
        and task["test"] == "mcnemar-exact"
        and (task["gained"], task["lost"]) == (1, 14)
    )
    assert payload["methods"]["binary"]["interval"] == "newcombe-paired-score" and payload["seed"] == 42


def test_fail_if_worse_sets_exit_code_3(tmp_path):
    worse_runs(tmp_path)
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    result = invoke("compare", *runs, "--fail-if-worse", "T")
    assert result.exit_code == 3
    failed = [line for line in result.output.splitlines() if line.startswith("check failed:")]
    assert len(failed) == 1 and failed[0].startswith("check failed: T got significantly worse in ")
    assert invoke("compare", *runs, "--fail-if-worse", "S").exit_code == 0  # unchanged
    assert invoke("compare", *runs, "--fail-if-worse", "*").exit_code == 3
    task = compare_runs(runs).comparisons[0].tasks["T"]
    inside = -task.ci95[1] - 0.01  # a margin the whole interval is below
    assert invoke("compare", *runs, "--fail-if-worse", f"T:{inside:.4f}").exit_code == 3
    assert invoke("compare", *runs, "--fail-if-worse", f"T:{-task.ci95[1] + 0.01:.4f}").exit_code == 0
    assert invoke("compare", *reversed(runs), "--fail-if-worse", "T").exit_code == 0  # better, not worse
    assert invoke("compare", *runs, "--fail-if-worse", "overall").exit_code == 3
    assert invoke("compare", *runs, "--fail-if-worse", "nope").exit_code == 2
    assert invoke("compare", *runs, "--fail-if-worse", "T:-0.1").exit_code == 2
    result = invoke("compare", "--json", *runs, "--fail-if-worse", "T")
    assert result.exit_code == 3 and json.loads(result.stdout)["failed_checks"][0]["task"] == "T"


def test_gate_rule_and_parsing(tmp_path):
    worse_runs(tmp_path)
    report = compare_runs([tmp_path / "a", tmp_path / "b"])
    task = report.comparisons[0].tasks["T"]
    (failure,) = check_gates(report, [Gate("T")])
    assert failure.difference == task.difference < 0 and failure.p_value == task.p_holm < 0.05
    assert task.ci95[1] < 0 and "T got significantly worse" in failure.message()
    assert check_gates(report, [Gate("T", margin=-task.ci95[1] + 1e-6)]) == []
    assert Gate.parse("GSM8K") == Gate("GSM8K") and Gate.parse("GSM8K:0.02") == Gate("GSM8K", 0.02)
    assert Gate.parse("ns:task") == Gate("ns:task") and Gate.parse("ns:task:0.1") == Gate("ns:task", 0.1)
    for bad in (":0.1", "T:1.5", "T:-0.01", ""):
        with pytest.raises(ValueError, match="fail-if-worse"):
            Gate.parse(bad)


def test_three_runs_are_each_compared_with_the_first(tmp_path):
    worse_runs(tmp_path)
    make_run(tmp_path / "c", {"T": binary("T", [1] * 60)}, model="third")
    report = compare_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    assert [c.candidate.path for c in report.comparisons] == [str(tmp_path / "b"), str(tmp_path / "c")]
    assert all(c.baseline.path == str(tmp_path / "a") for c in report.comparisons)
    assert report.comparisons[1].only_baseline == ["S"]
    result = invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"))
    assert result.exit_code == 0 and "each run is compared with the baseline A" in result.output
    assert "C vs A" in result.output and "tasks only in A (not compared): S" in result.output


# ----- runs of the real runner ---------------------------------------------------------------------
class Knows:
    """A chat model that knows the answers of mem-ARC and gives the right one when ``rule`` says."""

    def __init__(self, task, rule) -> None:
        self.rule = rule
        self.answers = {c["messages"][0]["content"]: (reference_of(task, c), c["letters"]) for c in task}

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        prompt = messages[-1]["content"]
        answer, letters = self.answers[prompt]
        if self.rule(hashlib.sha256(prompt.encode()).digest()[0]):
            return answer
        return letters[(letters.index(answer) + 1) % len(letters)]


def test_compare_runs_of_the_runner(memory_tasks, tmp_path):
    from memory_tasks import MemoryARC

    task = MemoryARC()
    old = Knows(task, lambda byte: byte % 2 == 0)
    new = Knows(task, lambda byte: byte % 3 != 0)
    for name, model in (("old", old), ("new", new)):
        evaluate_model(model, ["mem-ARC"], limit=40, output=tmp_path / name, progress=False)
    result = compare_runs([tmp_path / "old", tmp_path / "new"]).comparisons[0].tasks["mem-ARC"]
    right = [
        (old.rule(d), new.rule(d))
        for d in (hashlib.sha256(task[i]["messages"][0]["content"].encode()).digest()[0] for i in range(40))
    ]
    gained = sum(1 for x, y in right if y and not x)
    lost = sum(1 for x, y in right if x and not y)
    assert result.kind is Kind.BINARY and result.n == 40 and result.same_data is True
    assert (result.gained, result.lost) == (gained, lost)
    assert result.p_value == pytest.approx(scipy_stats.binomtest(gained, gained + lost, 0.5).pvalue)
    stored = json.loads((tmp_path / "new" / "results.json").read_text())["tasks"]["mem-ARC"]
    assert result.candidate.accuracy == stored["accuracy"]
    assert result.chance == pytest.approx(stored["chance"])
