"""Time building each dataset task and reading every conversation, against a plain read of its files.

For each case the bench reports

- ``cold``: the first build + full read, which also fills the Arrow cache (a fresh temporary
  cache folder unless ``--keep-cache``);
- ``warm``: the best of ``--repeat`` later builds + full reads (the everyday cost);
- ``floor``: the best of ``--repeat`` plain reads of the same files (``json.loads`` per line, or
  ``pyarrow.parquet`` + ``to_pylist``) -- raw rows, no shuffle, no conversations;
- ``ratio``: warm / floor. The goal for MMLU all/test is at most 3x.

Run: ``python bench/bench_tasks.py [--data-dir ../shared/data/hub] [--repeat 5] [--only MMLU]``.
Add a task by appending a ``Case`` to ``cases()``: a name, a builder taking the data folder, the
files (relative to it) whose plain read is the floor, and optionally a floor reader of your own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "hub"
GOALS = {"MMLU all/test": 3.0}  # case name -> the largest acceptable warm/floor ratio


@dataclass(frozen=True)
class Case:
    """One benchmark row: how to build the task from a data folder, and which files are its floor."""

    name: str
    build: Callable[[Path], Any]
    files: tuple[str, ...]
    floor: Callable[[list[Path]], int] | None = None  # None: plain_read (json lines or parquet)


def _arc(subset: str, split: str) -> Case:
    from chattasks.tasks.arc import ARC

    return Case(
        f"{subset}/{split}",
        lambda d: ARC(subset, split, data_dir=d),
        (f"allenai/ai2_arc/{subset}/{split}.jsonl",),
    )


def _mmlu(split: str) -> Case:
    from chattasks.tasks.mmlu import MMLU

    return Case(
        f"MMLU all/{split}", lambda d: MMLU("all", split, data_dir=d), (f"cais/mmlu/all/{split}.jsonl",)
    )


def _gsm8k(subset: str, split: str) -> Case:
    from chattasks.tasks.gsm8k import GSM8K

    return Case(
        f"GSM8K {subset}/{split}",
        lambda d: GSM8K(subset, split, data_dir=d),
        (f"openai/gsm8k/{subset}/{split}-00000-of-00001.parquet",),
    )


def cases() -> list[Case]:
    """Every benchmark case; append yours here."""
    return [
        _arc("ARC-Easy", "test"),
        _arc("ARC-Challenge", "test"),
        _mmlu("test"),
        _mmlu("validation"),
        _gsm8k("main", "train"),
        _gsm8k("main", "test"),
    ]


def plain_read(paths: list[Path]) -> int:
    """The floor: read the files as plain Python rows, the simplest way; returns the row count."""
    count = 0
    for path in paths:
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            count += len(pq.read_table(path).to_pylist())
        else:
            with path.open(encoding="utf-8") as handle:
                count += len([json.loads(line) for line in handle if line.strip()])
    return count


def build_and_read(case: Case, data_dir: Path) -> int:
    """Build the task and read every conversation in it; returns the count."""
    task = case.build(data_dir)
    count = 0
    for _ in task:
        count += 1
    return count


def best_of(repeat: int, function: Callable[[], int]) -> tuple[float, int]:
    """The fastest of ``repeat`` timed calls, and what the call returned."""
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(data_dir: Path, repeat: int, only: str | None) -> int:
    """Print the table; return 1 if a goal is missed."""
    print(f"data: {data_dir}   repeat: {repeat}   cache: {os.environ.get('CHATTASKS_CACHE_DIR')}")
    print(f"{'case':<24}{'rows':>8}{'cold s':>9}{'warm s':>9}{'floor s':>9}{'ratio':>7}  goal")
    missed = 0
    for case in cases():
        if only and only.lower() not in case.name.lower():
            continue
        paths = [data_dir / f for f in case.files]
        if not all(p.is_file() for p in paths):
            print(f"{case.name:<24}  skipped: {', '.join(str(p) for p in paths if not p.is_file())} missing")
            continue
        start = time.perf_counter()
        rows = build_and_read(case, data_dir)
        cold = time.perf_counter() - start
        warm, _ = best_of(repeat, partial(build_and_read, case, data_dir))
        floor, floor_rows = best_of(repeat, partial(case.floor or plain_read, paths))
        if floor_rows != rows:
            print(f"{case.name}: the task has {rows} conversations but the files hold {floor_rows} rows")
            missed += 1
        ratio = warm / floor
        goal = GOALS.get(case.name)
        verdict = "" if goal is None else (f"<= {goal:g}x ok" if ratio <= goal else f"<= {goal:g}x MISSED")
        missed += goal is not None and ratio > goal
        print(f"{case.name:<24}{rows:>8}{cold:>9.3f}{warm:>9.3f}{floor:>9.3f}{ratio:>6.1f}x  {verdict}")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("CHATTASKS_DATA_DIR", DEFAULT_DATA_DIR))
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--keep-cache", action="store_true", help="use $CHATTASKS_CACHE_DIR as it is")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"no local mirror at {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    if args.keep_cache:
        return run(args.data_dir, args.repeat, args.only)
    with tempfile.TemporaryDirectory(prefix="chattasks-bench-") as cache:
        os.environ["CHATTASKS_CACHE_DIR"] = cache
        return run(args.data_dir, args.repeat, args.only)


if __name__ == "__main__":
    sys.exit(main())
