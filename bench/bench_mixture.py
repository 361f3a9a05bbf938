"""Build a 1,000,000-row TaskMixture: chattasks' numpy index vs nanochat's list of tuples.

Baseline (named "list+random"): a Python list of (task_idx, local_idx) tuples shuffled with
random.Random(42), as nanochat's TaskMixture does. Prints time and memory of each, and the
ratios (goals: >= 20x faster, >= 10x less memory).

    python bench/bench_mixture.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from chattasks import Task, TaskMixture


class Rows(Task):
    """A task of n rows whose data costs nothing, so only the mixture's index is measured."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    @property
    def eval_type(self):
        return "generative"

    def num_examples(self):
        return self.n

    def get_example(self, index):
        return {"messages": [], "index": index}


def baseline(tasks):
    lengths = [len(task) for task in tasks]
    index_map = [(t, i) for t, n in enumerate(lengths) for i in range(n)]
    random.Random(42).shuffle(index_map)
    return index_map


def measure(build, tasks, repeats=3):
    """Best wall time of `repeats` builds (untraced), then retained and peak memory of one traced build."""
    seconds = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = build(tasks)
        seconds = min(seconds, time.perf_counter() - start)
        del result
    tracemalloc.start()
    result = build(tasks)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return seconds, retained, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.rows
    big, small, other = Rows(n - 3 * (n // 5)), Rows(n // 5), Rows(n // 5)
    tasks = [big, small, other, small]  # `small` listed twice: oversampling
    total = sum(len(t) for t in tasks)
    base_s, base_kept, base_peak = measure(baseline, tasks)
    ours_s, ours_kept, ours_peak = measure(TaskMixture, tasks)
    mixture = TaskMixture(tasks)
    start = time.perf_counter()
    for i in range(0, total, max(1, total // 100_000)):
        mixture[i]
    per_item = (time.perf_counter() - start) / len(range(0, total, max(1, total // 100_000)))
    mb = 1 / 2**20
    print(f"mixture of {total:,} rows")
    print(
        f"  baseline list+random : {base_s:8.3f} s   retained {base_kept * mb:8.1f} MB   peak {base_peak * mb:8.1f} MB"
    )
    print(
        f"  chattasks TaskMixture: {ours_s:8.3f} s   retained {ours_kept * mb:8.1f} MB   peak {ours_peak * mb:8.1f} MB"
    )
    print(
        f"  speed-up {base_s / ours_s:6.1f}x (goal >= 20x)   memory {base_kept / ours_kept:6.1f}x less retained, "
        f"{base_peak / ours_peak:6.1f}x less at peak (goal >= 10x)"
    )
    print(f"  mixture[i]: {per_item * 1e6:.2f} us per access")


if __name__ == "__main__":
    main()
