"""Kill a real run with SIGKILL again and again, resume it each time: the end is an uninterrupted run's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from chattasks.eval.journal import encode_record, read_records
from chattasks.eval.record import SampleRecord

TASKS = ("mem-ARC", "mem-GSM8K")
TESTS_DIR = Path(__file__).resolve().parent
LIMIT = 40
SCRIPT = """
import hashlib, sys, time
sys.path.insert(0, sys.argv[3])
import memory_tasks
from chattasks.eval.runner import evaluate_model

memory_tasks.register()

def model(messages):
    # deterministic and a little slow: a letter or a number chosen by the prompt's hash
    time.sleep(0.01)
    text = messages[-1]["content"]
    digest = hashlib.sha256(text.encode()).digest()
    if digest[1] % 5 == 0:
        return "I don't know"
    if text.startswith("Multiple Choice question:"):
        letters = [line.rsplit("=", 1)[1] for line in text.splitlines() if line.startswith("- ")]
        return letters[digest[0] % len(letters)]
    return f"#### {digest[0] % 8}"

out, resume = sys.argv[1], sys.argv[2] == "1"
evaluate_model(model, ["mem-ARC", "mem-GSM8K"], limit=40, output=out, resume=resume, batch_size=3, progress=False)
"""


def start(out: Path) -> subprocess.Popen[bytes]:
    resume = "1" if (out / "run.json").exists() else "0"
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out), resume, str(TESTS_DIR)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def journal_lines(out: Path) -> int:
    folder = out / "samples"
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl")) if folder.is_dir() else 0


def finish(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()


def without_timing(record: SampleRecord) -> SampleRecord:
    return record.replace(time=0.0, finished=None, rank=0)


def _partial_record() -> SampleRecord:
    return SampleRecord("mem-GSM8K", 39, 0, [], "", None, None, 1.0, None, "generate")


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_results(tmp_path):
    reference = tmp_path / "reference"
    finish(start(reference))
    total = len(TASKS) * LIMIT
    assert journal_lines(reference) == total

    out = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("CHATTASKS_KILL_SEED", "20240607")))
    kills, mid_run = [], 0
    for attempt in range(10):
        process = start(out)
        before = journal_lines(out)
        if attempt == 0:
            time.sleep(rng.uniform(0.05, 0.4))  # most likely while importing or loading data
        else:  # wait for progress, then kill at a random moment of the run
            deadline = time.monotonic() + 60
            while journal_lines(out) == before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        lines = journal_lines(out)
        kills.append((attempt, lines))
        mid_run += 0 < lines < total
        if attempt == 2 and (out / "samples" / "mem-GSM8K.jsonl").exists():
            with open(out / "samples" / "mem-GSM8K.jsonl", "ab") as handle:  # a write cut short by the kill
                handle.write(encode_record(_partial_record())[:25])
        if mid_run >= 4 or lines >= total:
            break
    assert mid_run >= 2, f"too few kills landed mid-run: {kills}"
    finish(start(out))

    expected = json.loads((reference / "results.json").read_text())
    got = json.loads((out / "results.json").read_text())
    assert got["tasks"] == expected["tasks"], kills
    assert got["complete"] and got["centered_mean"] == expected["centered_mean"]
    for task in TASKS:
        mine = read_records(out / "samples" / f"{task}.jsonl")
        theirs = read_records(reference / "samples" / f"{task}.jsonl")
        assert mine.duplicates == 0 and mine.corrupt == 0, kills  # nothing counted twice, no broken line
        assert sorted(mine.records) == sorted(theirs.records) == [(i, 0) for i in range(LIMIT)]
        for key, record in theirs.records.items():
            assert without_timing(mine.records[key]) == without_timing(record)
