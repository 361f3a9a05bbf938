"""Run directories written by chattasks 0.1.0 (tests/fixtures/runs-0.1.0) read, regrade and re-run identically."""

from __future__ import annotations

import json
import shutil

import compat_models
import pytest

from chattasks.errors import RunDirError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.journal import RunDirectory, read_records
from chattasks.eval.record import SCHEMA_VERSION, SampleRecord
from chattasks.eval.regrade import regrade
from chattasks.eval.runner import evaluate_model

FIXTURES = compat_models.__file__.rsplit("/", 1)[0] + "/fixtures/runs-0.1.0"
VOLATILE = {"time", "finished", "rank"}


def same_as_old(new: dict, old: dict, skip: frozenset[str] = frozenset()) -> bool:
    """Whether ``new`` holds every key of ``old`` (but ``skip``) with the same value: what 0.1.0 wrote is
    unchanged, and what later versions add sits beside it."""
    return {k: new.get(k) for k in old if k not in skip} == {k: v for k, v in old.items() if k not in skip}


def same_tasks(new: dict, old: dict) -> bool:
    return new.keys() == old.keys() and all(same_as_old(new[task], old[task]) for task in old)


def old_lines(run: str, task: str) -> list[dict]:
    path = f"{FIXTURES}/{run}/samples/{task}.jsonl"
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def old_results(run: str) -> dict:
    with open(f"{FIXTURES}/{run}/results.json", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("run", sorted(compat_models.RUNS))
def test_every_old_line_reads_as_a_record_with_the_same_fields(run):
    for task in compat_models.RUNS[run][1]:
        for line in old_lines(run, task):
            assert "schema" not in line  # written by 0.1.0
            record = SampleRecord.from_json(line)
            assert same_as_old(record.to_json(), line)


@pytest.mark.parametrize("run", sorted(compat_models.RUNS))
def test_regrade_of_an_old_run_gives_the_same_results(run, memory_tasks, tmp_path):
    copy = tmp_path / run
    shutil.copytree(f"{FIXTURES}/{run}", copy)
    results = regrade(copy).to_dict()
    assert same_tasks(results["tasks"], old_results(run)["tasks"])
    assert results["centered_mean"] == old_results(run)["centered_mean"]
    for task in compat_models.RUNS[run][1]:
        new = read_records(RunDirectory(copy).samples_path(task)).records
        for line in old_lines(run, task):  # regrading changed nothing 0.1.0 wrote
            assert same_as_old(new[line["index"], line.get("sample", 0)].to_json(), line)
        assert all(
            json.loads(line)["schema"] == SCHEMA_VERSION
            for line in open(RunDirectory(copy).samples_path(task))
        )


@pytest.mark.parametrize("run", sorted(compat_models.RUNS))
def test_a_new_run_gives_the_numbers_of_the_old_one(run, memory_tasks, tmp_path):
    kind, tasks, options = compat_models.RUNS[run]
    options = dict(options)
    if options.pop("sampled", False):
        options["generation"] = GenerationConfig(max_new_tokens=32, temperature=1.0, num_samples=3)
    chosen = compat_models.model if kind == "function" else compat_models.Scored()
    results = evaluate_model(chosen, tasks, output=tmp_path / run, progress=False, **options).to_dict()
    assert same_tasks(results["tasks"], old_results(run)["tasks"])
    for task in tasks:
        new = read_records(RunDirectory(tmp_path / run).samples_path(task)).records
        for line in old_lines(run, task):
            record = new[line["index"], line.get("sample", 0)].to_json()
            assert same_as_old(record, line, skip=frozenset(VOLATILE))


@pytest.mark.parametrize("run", ["generate", "sampled"])
def test_an_old_run_cut_short_resumes_with_its_own_decoding(run, memory_tasks, tmp_path):
    kind, tasks, options = compat_models.RUNS[run]
    options = {key: value for key, value in options.items() if key != "sampled"}
    copy = tmp_path / run
    shutil.copytree(f"{FIXTURES}/{run}", copy)
    (copy / "results.json").unlink()
    for task in tasks:  # as if 0.1.0 had been killed after a few samples of each task
        journal = RunDirectory(copy).samples_path(task)
        journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:4]))
    chosen = compat_models.model if kind == "function" else compat_models.Scored()
    # no generation= given: the run's own decoding (0.1.0 offered no tools), as --resume does
    results = evaluate_model(chosen, tasks, output=copy, resume=True, progress=False, **options).to_dict()
    assert same_tasks(results["tasks"], old_results(run)["tasks"])
    with pytest.raises(RunDirError, match="settings differ: generation"):
        evaluate_model(
            chosen, tasks, output=copy, resume=True, progress=False, generation=GenerationConfig(), **options
        )


def test_a_newer_journal_version_is_a_clear_error(tmp_path):
    from chattasks.errors import JournalVersionError

    path = tmp_path / "T.jsonl"
    line = dict(old_lines("letter", "mem-ARC")[0], schema=SCHEMA_VERSION + 1)
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(JournalVersionError, match=rf"T.jsonl:1: journal schema version {SCHEMA_VERSION + 1}"):
        read_records(path)
