"""Load a 1,000,000-line CustomJSON file: chattasks vs nanochat's loader.

Baseline (named "nanochat-style"): read each line, json.loads it, check roles/content, and
keep every parsed conversation in a list, as nanochat's CustomJSON does. chattasks checks
each line once and keeps only the memory-mapped bytes and two offset arrays. Prints the
load time and retained Python-heap memory of each, and the ratios.

    python bench/bench_customjson.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from chattasks import CustomJSON


def nanochat_style(path: Path) -> list:
    conversations = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            messages = json.loads(line)
            if not isinstance(messages, list) or len(messages) < 2:
                raise ValueError("bad conversation")
            for i, message in enumerate(messages):
                if message.get("role") != ("user" if i % 2 == 0 else "assistant"):
                    raise ValueError("bad role")
                if not isinstance(message.get("content"), str):
                    raise ValueError("bad content")
            conversations.append(messages)
    return conversations


def write_file(path: Path, lines: int) -> None:
    rng = random.Random(0)
    words = "the a model small chat token learn data answer question why how what seven".split()
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(lines):
            turns = rng.choice((2, 2, 4))
            messages = [
                {
                    "role": "user" if t % 2 == 0 else "assistant",
                    "content": " ".join(rng.choice(words) for _ in range(rng.randint(3, 30))),
                }
                for t in range(turns)
            ]
            handle.write(json.dumps(messages) + "\n")


def measure(load, path: Path):
    start = time.perf_counter()
    result = load(path)
    seconds = time.perf_counter() - start
    del result
    tracemalloc.start()
    result = load(path)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, retained, peak, len(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conversations.jsonl"
        write_file(path, args.lines)
        size_mb = path.stat().st_size / 2**20
        base = measure(nanochat_style, path)
        ours = measure(CustomJSON, path)
    mb = 1 / 2**20
    print(f"CustomJSON file: {args.lines:,} lines, {size_mb:.0f} MB")
    for name, (seconds, retained, peak, count) in (
        ("baseline nanochat-style", base),
        ("chattasks CustomJSON  ", ours),
    ):
        print(
            f"  {name}: {seconds:7.2f} s   retained {retained * mb:8.1f} MB   peak {peak * mb:8.1f} MB   {count:,} rows"
        )
    print(f"  time ratio {base[0] / ours[0]:.2f}x   retained memory {base[1] / ours[1]:.1f}x less")


if __name__ == "__main__":
    main()
