"""chattasks.report.groups: MMLU's per-subject scores, against the task's own subjects."""

from __future__ import annotations

import json

import pytest
from memory_tasks import MemoryMMLU
from report_runs import make_run

from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.eval.results import wilson_interval
from chattasks.report.groups import group_scores


def test_groups_are_the_subjects_of_the_questions(memory_tasks, tmp_path):
    run = make_run(tmp_path / "run", 5, ["mem-MMLU"])
    records = list(RunDirectory(run).read("mem-MMLU").records.values())
    task = MemoryMMLU()
    assert [r.group for r in records] == [task[r.index]["subject"] for r in records]
    scores = group_scores(records)
    assert [s.group for s in scores] == sorted({c["subject"] for c in task})
    for score in scores:
        mine = [r for r in records if task[r.index]["subject"] == score.group]
        assert score.n == len(mine)
        assert score.accuracy == pytest.approx(sum(r.score for r in mine) / len(mine))
        assert score.ci95 == wilson_interval(sum(r.score for r in mine), len(mine))
    assert sum(s.n for s in scores) == len(records)


def test_a_question_counts_once_with_its_mean_score():
    records = [
        SampleRecord("t", 0, k, [], "", None, None, v, None, "generate", group="a")
        for k, v in enumerate([1, 0, 1, 1])
    ]
    records.append(SampleRecord("t", 1, 0, [], "", None, None, 0.0, None, "generate", group="b"))
    scores = group_scores(records)
    assert [(s.group, s.n, s.correct) for s in scores] == [("a", 1, 0.75), ("b", 1, 0.0)]


def test_tasks_without_groups_have_no_breakdown(memory_tasks, tmp_path):
    run = make_run(tmp_path / "run", 5, ["mem-ARC"])
    assert group_scores(RunDirectory(run).read("mem-ARC").records.values()) == []


def test_regrading_an_older_journal_adds_the_subjects(memory_tasks, tmp_path):
    from chattasks.eval.regrade import regrade

    run = make_run(tmp_path / "run", 5, ["mem-MMLU"])
    journal = RunDirectory(run).samples_path("mem-MMLU")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    journal.write_text(
        "".join(json.dumps({k: v for k, v in line.items() if k != "group"}) + "\n" for line in lines)
    )
    assert group_scores(RunDirectory(run).read("mem-MMLU").records.values()) == []
    regrade(run)
    records = RunDirectory(run).read("mem-MMLU").records.values()
    assert [r.group for r in records] == [line["group"] for line in lines]
