"""The journal: whole lines or nothing, first occurrence wins, partial tails cut, safe to share."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from pathlib import Path

import pytest

from chattasks.eval.journal import (
    RunDirectory,
    RunDirError,
    append_records,
    encode_record,
    read_records,
    rewrite_records,
    task_filename,
)
from chattasks.eval.record import SampleRecord


def record(index: int, sample: int = 0, score: float = 1.0, **extra) -> SampleRecord:
    fields = {"prompt": [], "response": "", "extracted": None, "reference": None, "failure": None}
    return SampleRecord(
        task="T", index=index, sample=sample, score=score, method="generate", **{**fields, **extra}
    )


def test_lines_round_trip_in_order(tmp_path):
    path = tmp_path / "samples" / "T.jsonl"
    assert append_records(path, [record(0), record(1, response="héllo\nworld")]) == 2
    append_records(path, [record(2)])
    contents = read_records(path)
    assert list(contents.records) == [(0, 0), (1, 0), (2, 0)]
    assert contents.records[1, 0].response == "héllo\nworld"
    assert path.read_bytes().count(b"\n") == 3  # one physical line per record, newlines escaped


def test_a_missing_journal_is_empty(tmp_path):
    contents = read_records(tmp_path / "nothing.jsonl")
    assert contents.records == {} and contents.duplicates == 0


def test_the_first_occurrence_of_a_key_wins(tmp_path):
    path = tmp_path / "T.jsonl"
    append_records(path, [record(0, score=1.0), record(1, score=0.0)])
    append_records(path, [record(0, score=0.0), record(1, sample=1, score=1.0)])  # a second machine
    contents = read_records(path)
    assert contents.records[0, 0].score == 1.0
    assert contents.duplicates == 1
    assert set(contents.records) == {(0, 0), (1, 0), (1, 1)}


def test_a_partial_last_line_is_ignored_then_cut_before_the_next_append(tmp_path):
    path = tmp_path / "T.jsonl"
    append_records(path, [record(0), record(1)])
    with open(path, "ab") as handle:  # what a writer killed inside write() leaves
        handle.write(encode_record(record(2))[:17])
    assert list(read_records(path).records) == [(0, 0), (1, 0)]
    append_records(path, [record(3)])
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["index"] for line in lines[:-1]] == [0, 1, 3]


def test_a_file_that_is_only_a_partial_line_is_cut_to_empty(tmp_path):
    path = tmp_path / "T.jsonl"
    path.write_bytes(b'{"index": 0, "sam')
    append_records(path, [record(5)])
    assert list(read_records(path).records) == [(5, 0)]


def test_corrupt_complete_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "T.jsonl"
    path.write_bytes(
        encode_record(record(0)) + b"not json\n" + b'{"no_index": 1}\n' + b"\n" + encode_record(record(1))
    )
    contents = read_records(path)
    assert list(contents.records) == [(0, 0), (1, 0)]
    assert contents.corrupt == 2


def test_lines_are_strict_json():
    line = encode_record(record(0, details={"scores": {"A": -math.inf, "B": math.nan, "C": -0.5}}))
    assert json.loads(line)["details"]["scores"] == {"A": None, "B": None, "C": -0.5}
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_rewrite_replaces_a_journal_atomically(tmp_path):
    path = tmp_path / "T.jsonl"
    append_records(path, [record(0), record(0, score=0.0)])
    rewrite_records(path, [record(0, score=0.5)])
    contents = read_records(path)
    assert contents.records[0, 0].score == 0.5 and contents.duplicates == 0
    assert [p.name for p in tmp_path.iterdir()] == ["T.jsonl"]  # no temporary file left behind


def _writer(path: str, worker: int, count: int) -> None:
    for i in range(count):
        append_records(Path(path), [record(worker * 1000 + i, response="x" * (i % 7) * 500)], fsync=False)


def test_processes_appending_together_never_interleave_lines(tmp_path):
    path = tmp_path / "T.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), w, 150)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    contents = read_records(path)
    assert contents.corrupt == 0 and contents.duplicates == 0
    assert len(contents.records) == 600


@pytest.mark.parametrize(
    ("name", "filename"),
    [("ARC-Easy", "ARC-Easy.jsonl"), ("my task/v2", "my_task_v2.jsonl"), ("MMLU", "MMLU.jsonl")],
)
def test_task_filenames_are_safe(name, filename):
    assert task_filename(name) == filename


def test_task_filename_refuses_names_that_vanish():
    with pytest.raises(ValueError, match="empty file name"):
        task_filename("..")


def test_run_directory_paths_and_errors(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert run.samples_path("GSM8K") == tmp_path / "run" / "samples" / "GSM8K.jsonl"
    with pytest.raises(RunDirError, match="does not exist"):
        run.read_run()
    run.path.mkdir()
    with pytest.raises(RunDirError, match="run.json is missing"):
        run.read_run()
    run.write_run({"settings": {"limit": 3}})
    assert run.read_run()["settings"] == {"limit": 3} and run.exists()
    assert not run.has_samples()
    run.append("GSM8K", [record(0)])
    assert run.has_samples() and list(run.read("GSM8K").records) == [(0, 0)]
    run.run_file.write_text("{broken")
    with pytest.raises(RunDirError, match="cannot read"):
        run.read_run()


def test_appends_are_fsynced_by_default(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    append_records(tmp_path / "T.jsonl", [record(0), record(1)])
    append_records(tmp_path / "T.jsonl", [record(2)], fsync=False)
    assert len(synced) == 1
