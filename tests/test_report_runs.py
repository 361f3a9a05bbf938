"""chattasks.report.runs: reading run directories for a report."""

from __future__ import annotations

import json

import pytest
from report_runs import make_run

from chattasks.errors import RunDirError
from chattasks.report import load_run
from chattasks.report.runs import unique_labels


def test_labels_are_directory_names_made_unique():
    assert unique_labels(["runs/smol", "runs/big"]) == ["smol", "big"]
    assert unique_labels(["a/run", "b/run", "c"]) == ["a/run", "b/run", "c"]
    same = unique_labels(["x/run", "x/run"])
    assert same[0] != same[1] and all("run" in label for label in same)


def test_a_run_reads_its_results_and_the_samples_they_cover(memory_tasks, tmp_path):
    path = make_run(tmp_path / "run", 1, ["mem-ARC"], limit=12)
    run = load_run(path)
    assert run.label == "run" and run.tasks == ["mem-ARC"]
    assert run.results.tasks["mem-ARC"].n == 12
    assert [r.index for r in run.samples["mem-ARC"]] == list(range(12))
    stored = json.loads((path / "run.json").read_text())
    assert run.fingerprint("mem-ARC") == stored["fingerprints"]["mem-ARC"]


def test_a_run_without_results_or_without_a_run_is_refused(memory_tasks, tmp_path):
    path = make_run(tmp_path / "run", 1, ["mem-ARC"], limit=4)
    (path / "results.json").unlink()
    with pytest.raises(RunDirError, match="has no results.json yet.*chattasks regrade"):
        load_run(path)
    with pytest.raises(RunDirError, match="holds no run"):
        load_run(tmp_path)
