"""SmolTalk at train-split scale: ~460K generated rows of smol-smoltalk's schema, chattasks vs plain pyarrow.

The rows (``{"messages": [{"content", "role"}, ...], "source"}``: an optional system message, then
1-4 user/assistant pairs of 20-600 characters each) go to one parquet file in a temporary
Hub-layout folder. Timed, each against a floor that reads the same file with plain pyarrow:

    construct cold   SmolTalk("train", data_dir=...) with an empty Arrow cache  vs  pq.read_table
    construct warm   the same again (the Arrow cache is memory-mapped)           vs  pq.read_table
    random reads     task[i] at random i (each row checked as it is read)       vs  column[i].as_py()
    full pass        every row of the task, in its order                        vs  to_pylist() by batch
    validate_all     every row checked                                          vs  to_pylist() by batch

``--datasets`` adds nanochat's way (``datasets.load_dataset(...).shuffle(seed=42)``) for reference.

    python bench/bench_smoltalk_scale.py [--rows 460000] [--reads 20000] [--datasets]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

VOCAB = "the a model chat small answer question why how what seven data learn token write story plan".split()
SOURCES = [
    "smol-magpie-ultra",
    "smol-constraints",
    "smol-rewrite",
    "smol-summarize",
    "everyday-conversations",
]


def generate(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` rows of smol-smoltalk's schema, built column-wise (a few seconds for 460K rows)."""
    rng = np.random.default_rng(seed)
    system = rng.random(rows) < 0.15
    counts = 2 * rng.choice([1, 1, 2, 2, 3, 4], rows) + system
    row_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    total = int(row_offsets[-1])
    position = np.arange(total) - np.repeat(row_offsets[:-1], counts)
    has_system = np.repeat(system, counts)
    role_code = np.where(has_system & (position == 0), 0, 1 + (position - has_system) % 2)
    roles = pa.array(np.array(["system", "user", "assistant"])[role_code])
    lengths = rng.integers(20, 600, total)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    text = " ".join(rng.choice(VOCAB, 200_000)).encode()
    data = (text * (int(offsets[-1]) // len(text) + 1))[: int(offsets[-1])]
    contents = pa.LargeStringArray.from_buffers(total, pa.py_buffer(offsets), pa.py_buffer(data)).cast(
        pa.string()
    )
    messages = pa.ListArray.from_arrays(
        pa.array(row_offsets), pa.StructArray.from_arrays([contents, roles], names=["content", "role"])
    )
    return pa.table({"messages": messages, "source": pa.array(np.array(SOURCES)[rng.integers(0, 5, rows)])})


def timed(function: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The best wall time of ``repeat`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=460_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--datasets", action="store_true", help="also time HF datasets, as nanochat uses it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "hub"
        split_dir = root / "HuggingFaceTB" / "smol-smoltalk" / "default"
        split_dir.mkdir(parents=True)
        path = split_dir / "train-00000-of-00001.parquet"
        seconds, table = timed(lambda: generate(args.rows))
        pq.write_table(table, path)
        del table
        print(
            f"{args.rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB parquet (generated in {seconds:.1f}s)"
        )
        os.environ["CHATTASKS_CACHE_DIR"] = str(Path(folder) / "cache")  # a cold Arrow cache
        from chattasks.tasks.smoltalk import SmolTalk

        picks = np.random.default_rng(1).integers(0, args.rows, args.reads).tolist()
        floor_load, floor = timed(lambda: pq.read_table(path, memory_map=True), repeat=3)
        column = floor.column("messages")
        cold, _ = timed(lambda: SmolTalk("train", data_dir=root))
        warm, task = timed(lambda: SmolTalk("train", data_dir=root), repeat=3)
        results = [
            ("construct cold", cold, floor_load),
            ("construct warm", warm, floor_load),
            (
                f"{args.reads:,} random reads",
                timed(lambda: [task[i] for i in picks], repeat=2)[0],
                timed(lambda: [column[i].as_py() for i in picks], repeat=2)[0],
            ),
        ]
        batches = floor.select(["messages"]).to_batches(max_chunksize=4096)
        floor_pass = timed(lambda: sum(len(b.column(0).to_pylist()) for b in batches), repeat=2)[0]
        results.append(("full pass", timed(lambda: sum(1 for _ in task), repeat=2)[0], floor_pass))
        results.append(("validate_all", timed(task.validate_all, repeat=2)[0], floor_pass))
        print(f"{'':22}{'chattasks':>12}{'pyarrow':>12}{'ratio':>8}")
        for name, ours, base in results:
            print(f"{name:22}{ours:11.3f}s{base:11.3f}s{ours / base:7.2f}x")
        if args.datasets:
            time_datasets(path, picks, Path(folder) / "hf")


def time_datasets(path: Path, picks: list[int], cache: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    load, ds = timed(
        lambda: datasets.load_dataset(
            "parquet", data_files=str(path), split="train", cache_dir=str(cache)
        ).shuffle(seed=42)
    )
    reads = timed(lambda: [ds[i] for i in picks])[0]
    full = timed(lambda: sum(1 for _ in ds))[0]
    print(
        f"HF datasets (nanochat): construct {load:.3f}s, {len(picks):,} random reads {reads:.3f}s, "
        f"full pass {full:.3f}s"
    )


if __name__ == "__main__":
    main()
