"""A 1,000,000-row mixture of 5 tasks: chattasks' TaskMixture vs nanochat's, built and read.

Baseline (named "nanochat"): nanochat's TaskMixture as it behaves -- a Python list of
(task_idx, local_idx) tuples shuffled with random.Random(42); a lookup indexes the list, then
reads ``tasks[task_idx][local_idx]`` through nanochat's light ``Task.__getitem__``. Both
mixtures read children whose ``get_example`` is the same cheap function, so only the mixture
machinery is measured. Prints three ratios against the baseline measured in the same run:
build time (goal >= 20x faster), memory (goal >= 10x less), and lookup time through
``mixture[i]`` (goal: no slower, ratio >= 1.0x).

    python bench/bench_mixture.py [--rows 1000000] [--reads 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from cpu_info import cpu_line

from chattasks import Task, TaskMixture


def free_row(index: int) -> dict[str, Any]:
    """The row both kinds of task hand out: its data costs nothing, so the mixture is what is timed."""
    return {"messages": [], "index": index}


class Rows(Task):
    """A chattasks task of n free rows."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n

    @property
    def eval_type(self) -> str:
        return "generative"

    def num_examples(self) -> int:
        return self.n

    def get_example(self, index: int) -> dict[str, Any]:
        return free_row(index)


class NanochatRows:
    """A task of n free rows behaving as one written on nanochat's ``Task``: index checked, then offset."""

    def __init__(self, n: int, start: int = 0, step: int = 1) -> None:
        self.n, self.start, self.step = n, start, step

    def __len__(self) -> int:
        return -(-(self.n - self.start) // self.step)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not isinstance(index, int):
            raise TypeError(index)
        return self.get_example(self.start + index * self.step)

    def get_example(self, index: int) -> dict[str, Any]:
        return free_row(index)


class NanochatMixture(NanochatRows):
    """nanochat's mixture: every (task, row) pair as a tuple in one list, shuffled by random.Random(42)."""

    def __init__(self, tasks: Sequence[NanochatRows]) -> None:
        lengths = [len(task) for task in tasks]
        super().__init__(sum(lengths))
        self.tasks = tasks
        self.index_map = [(t, i) for t, length in enumerate(lengths) for i in range(length)]
        random.Random(42).shuffle(self.index_map)

    def get_example(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        task, row = self.index_map[index]
        return self.tasks[task][row]


def five_tasks(kind: Callable[[int], Any], n: int) -> list[Any]:
    """Four tasks listed five times (the second twice: oversampled), n rows in all."""
    fifth = n // 5
    big, small, other, last = kind(n - 4 * fifth), kind(fifth), kind(fifth), kind(fifth)
    return [big, small, other, small, last]


def measure_build(build: Callable[[], Any], repeats: int) -> tuple[float, int, int]:
    """Best wall time of ``repeats`` builds (untraced), then retained and peak memory of one traced build."""
    seconds = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = build()
        seconds = min(seconds, time.perf_counter() - start)
        del result
    tracemalloc.start()
    result = build()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return seconds, retained, peak


def time_reads(mixture: Any, reads: int) -> float:
    """Seconds per ``mixture[i]`` over positions 0..reads-1, the order an SFT loader reads them in."""
    start = time.perf_counter()
    for i in range(reads):
        mixture[i]
    return (time.perf_counter() - start) / reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200_000, help="lookups timed per repeat")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many (interleaved) runs")
    args = parser.parse_args()
    ours_tasks, base_tasks = five_tasks(Rows, args.rows), five_tasks(NanochatRows, args.rows)
    base_s, base_kept, base_peak = measure_build(lambda: NanochatMixture(base_tasks), 3)
    ours_s, ours_kept, ours_peak = measure_build(lambda: TaskMixture(ours_tasks), 3)

    ours, base = TaskMixture(ours_tasks), NanochatMixture(base_tasks)
    reads = min(args.reads, len(ours))
    ours_read = base_read = float("inf")
    for _ in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits both
        base_read = min(base_read, time_reads(base, reads))
        ours_read = min(ours_read, time_reads(ours, reads))

    mb = 1 / 2**20
    print(cpu_line())
    print(
        f"mixture of {len(ours):,} rows over {len(ours_tasks)} tasks; {reads:,} reads, best of {args.repeat}"
    )
    for name, seconds, kept, peak, read in (
        ("nanochat  (list+random)", base_s, base_kept, base_peak, base_read),
        ("chattasks TaskMixture  ", ours_s, ours_kept, ours_peak, ours_read),
    ):
        print(
            f"  {name}: build {seconds:7.3f} s   retained {kept * mb:7.1f} MB   peak {peak * mb:7.1f} MB"
            f"   mixture[i] {read * 1e6:5.2f} us"
        )
    print(
        f"  build {base_s / ours_s:5.1f}x faster (goal >= 20x)   memory {base_kept / ours_kept:5.1f}x less "
        f"retained, {base_peak / ours_peak:5.1f}x less at peak (goal >= 10x)   "
        f"lookup {base_read / ours_read:4.2f}x nanochat's speed (goal >= 1.0x)"
    )


if __name__ == "__main__":
    main()
