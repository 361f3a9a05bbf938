"""chattasks.report.pairs: questions paired between runs, flips counted against the journals."""

from __future__ import annotations

import json

import pytest
from report_runs import MEMORY_TASKS, make_run

from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.report import load_runs, pair_runs
from chattasks.report.pairs import solved


@pytest.fixture
def three(memory_tasks, tmp_path):
    return [make_run(tmp_path / name, seed) for name, seed in (("a", 1), ("b", 2), ("c", 3))]


def outcomes(run, task):
    return {r.index: r.score > 0.5 for r in RunDirectory(run).read(task).records.values()}


def test_flips_are_the_questions_whose_outcome_differs(three):
    pairs, notes = pair_runs(load_runs(three))
    assert notes == []
    assert {pair.key for pair in pairs} == {
        (t, a, b) for t in MEMORY_TASKS for a, b in ((0, 1), (0, 2), (1, 2))
    }
    for pair in pairs:
        first, second = outcomes(three[pair.base], pair.task), outcomes(three[pair.other], pair.task)
        assert pair.n == len(first) == len(second)
        assert list(pair.gained) == [i for i in sorted(first) if second[i] and not first[i]]
        assert list(pair.lost) == [i for i in sorted(first) if first[i] and not second[i]]
        assert pair.flipped == tuple(i for i in sorted(first) if first[i] != second[i])
        assert pair.base_accuracy == pytest.approx(sum(first.values()) / len(first))
        assert pair.other_accuracy == pytest.approx(sum(second.values()) / len(second))
    assert sum(len(pair.flipped) for pair in pairs) > 10


def test_only_questions_both_runs_answered_are_paired(memory_tasks, tmp_path):
    short = make_run(tmp_path / "short", 1, limit=15)
    full = make_run(tmp_path / "full", 2)
    pairs, notes = pair_runs(load_runs([short, full]))
    assert notes == []  # different limits, different fingerprints, same questions
    assert {pair.task: pair.n for pair in pairs} == {task: 15 for task in MEMORY_TASKS}
    assert all(max(pair.flipped, default=0) < 15 for pair in pairs)


def test_runs_that_asked_different_questions_are_not_paired(memory_tasks, tmp_path):
    runs = [make_run(tmp_path / "a", 1), make_run(tmp_path / "b", 2)]
    journal = RunDirectory(runs[1]).samples_path("mem-ARC")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    lines[3]["prompt"][0]["content"] = "Which number is different?"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = json.loads((runs[1] / "results.json").read_text())
    results["tasks"]["mem-ARC"]["fingerprint"] = "0" * 64
    (runs[1] / "results.json").write_text(json.dumps(results))
    pairs, notes = pair_runs(load_runs(runs))
    assert {pair.task for pair in pairs} == {"mem-MMLU", "mem-GSM8K"}
    assert len(notes) == 1 and notes[0].startswith("mem-ARC: a and b asked 1 question(s) differently")


def record(index: int, sample: int, score: float) -> SampleRecord:
    return SampleRecord("t", index, sample, [], "", None, None, score, None, "generate")


def test_a_question_is_solved_when_its_mean_score_is_above_one_half():
    records = [record(0, s, v) for s, v in enumerate([1, 1, 0])]
    records += [record(1, s, v) for s, v in enumerate([1, 0])]
    records += [record(2, s, v) for s, v in enumerate([0, 0, 1])]
    records += [record(3, 0, 1)]
    assert solved(records) == {0: True, 1: False, 2: False, 3: True}
