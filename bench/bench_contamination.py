"""Contamination check at SmolTalk train-split scale: chattasks against a plain-Python n-gram table.

Training side: ~460K generated rows of smol-smoltalk's schema (``bench_smoltalk_scale.generate``)
read through a mixture spec, plus a CustomJSON file of planted conversations that each embed
one evaluation item's text (re-cased, re-punctuated, split across two messages), so both sides
must find the same matches. Evaluation side: the test splits of GSM8K, MMLU, ARC-Easy,
ARC-Challenge and HumanEval from the local mirror (``--data-dir``), n = 13.

Both sides read the rows the same way (``chattasks.contamination.conversation_texts``: SmolTalk's
bulk text reader, CustomJSON's parser) and normalise them with the same function
(``chattasks.ngrams.fold``); they differ in how they match:

- chattasks: ``check_contamination`` (one sorted uint64 per evaluation (gram key, item) behind a
  bitmap and a directory; each training batch's grams keyed and looked up with numpy; every key
  match confirmed on the words);
- baseline: plain Python, the same rule: a dict from each evaluation gram (a tuple of words) to
  its items, every training conversation's n-grams tested at once with ``dict.keys().isdisjoint``
  (C speed), the short items' grams only where one of their first words occurs, hits then
  located gram by gram.

Each side runs in its own subprocess, twice: once timed (rows/s of the training stream, after
the evaluation side is built; peak RSS printed for context: it includes the interpreter, the
libraries and the memory-mapped Arrow data, the same for both), once under ``tracemalloc`` for
peak memory (every Python and numpy allocation from building the evaluation side to the end of
the stream, after a first read that imports what reading needs; Arrow's own buffers are not
traced, and are the same for both). The baseline is timed
on a prefix of the rows (``--baseline-rows``; its rate does not depend on how many rows follow),
memory on ``--memory-rows`` rows for both sides (neither grows with the training rows; chattasks'
full-size run is traced too, to show it). The first matches of both sides must agree exactly on
the rows both read. Goal: chattasks >= 5x the baseline's rows/s with >= 5x less peak memory.

    python bench/bench_contamination.py [--rows 460000] [--baseline-rows 46000] [--memory-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
TASKS = ["GSM8K", "MMLU", "ARC-Easy", "ARC-Challenge", "HumanEval"]
PLANTED_PER_TASK = 40


def plant(path: Path, data_dir: Path) -> int:
    """Write conversations embedding items of every task (varied case, punctuation and message split)."""
    from chattasks.contamination import evaluation_tasks, item_text

    lines = []
    for _, task in evaluation_tasks(TASKS, data_dir):
        step = max(1, len(task) // PLANTED_PER_TASK)
        for row in range(0, len(task), step)[:PLANTED_PER_TASK]:
            text = item_text(task[row]).replace(" ", " ... ", 3).upper()
            cut = len(text) // 2
            lines.append(
                json.dumps(
                    [
                        {"role": "user", "content": "Please look at this: " + text[:cut]},
                        {"role": "assistant", "content": text[cut:] + "\nDone."},
                    ]
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def baseline(evaluation: list[tuple[str, Any]], views: list[tuple[str, Any]], n: int) -> tuple[dict, dict]:
    """The same check in plain Python: ({task: {item: [label, row, gram]}}, {"index": s, "scan": s})."""
    from chattasks.contamination import conversation_texts, item_text
    from chattasks.ngrams import fold

    started = time.perf_counter()
    table: dict[tuple[bytes, ...], Any] = {}  # gram -> item, or list of items
    starters: dict[bytes, set[int]] = {}  # first word of a short item -> the lengths of such items
    where: list[tuple[str, int]] = []
    for name, task in evaluation:
        for row, conversation in enumerate(task):
            words = fold(item_text(conversation)).split()
            grams = zip(*(words[j:] for j in range(n))) if len(words) >= n else [tuple(words)] * bool(words)
            if 0 < len(words) < n:
                starters.setdefault(words[0], set()).add(len(words))
            item = len(where)
            where.append((name, row))
            for gram in grams:
                held = table.setdefault(gram, item)
                if held != item:
                    if not isinstance(held, list):
                        table[gram] = held = [held]
                    if held[-1] != item:
                        held.append(item)
    keys = table.keys()
    indexed = time.perf_counter()
    first: dict[int, tuple[str, int, str]] = {}
    for label, view in views:
        for row, text in enumerate(conversation_texts(view)):
            words = fold(text).split()
            found = []  # (start, length, gram)
            if not keys.isdisjoint(zip(*(words[j:] for j in range(n)))):
                found += [(start, n, gram) for start, gram in enumerate(zip(*(words[j:] for j in range(n))))]
            for start in [i for i, word in enumerate(words) if word in starters]:
                found += [(start, k, tuple(words[start : start + k])) for k in starters[words[start]]]
            hits = []
            for start, k, gram in found:
                held = table.get(gram)
                if held is not None and len(gram) == k:
                    hits += [(start, k, item, gram) for item in (held if isinstance(held, list) else [held])]
            for _, _, item, gram in sorted(hits, key=lambda hit: hit[:3]):
                first.setdefault(item, (label, row, b" ".join(gram).decode()))
    result: dict[str, Any] = {name: {} for name, _ in evaluation}
    for item, match in first.items():
        name, row = where[item]
        result[name][str(row)] = list(match)
    return result, {"index": indexed - started, "scan": time.perf_counter() - indexed}


def worker(args: argparse.Namespace) -> None:
    """One measured run (a subprocess): prints a JSON line of results."""
    from chattasks.contamination import (
        check_contamination,
        conversation_texts,
        evaluation_tasks,
        training_views,
    )
    from chattasks.sft.spec import load_spec

    evaluation = evaluation_tasks(TASKS, args.data_dir)
    views = training_views(load_spec(args.spec).build())
    rows = sum(len(view) for _, view in views)
    for _, view in views:  # first reads import what reading needs: not part of either side's memory
        next(conversation_texts(view[:1]), None)
    if args.trace:
        tracemalloc.start()
    if args.worker == "chattasks":
        report = check_contamination(dict(views), dict(evaluation), n=args.n)
        found = {r.task: {str(m.item): [m.source, m.row, m.ngram] for m in r.matches} for r in report.tasks}
        seconds = report.seconds
    else:
        found, seconds = baseline(evaluation, views, args.n)
    peak = tracemalloc.get_traced_memory()[1] if args.trace else None
    maxrss = peak_rss()
    print(json.dumps({"rows": rows, "seconds": seconds, "peak": peak, "maxrss": maxrss, "found": found}))


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux's VmHWM: ru_maxrss would count the parent's)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def run(spec: Path, side: str, data_dir: Path, n: int, trace: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", side, "--spec", str(spec)]
    command += ["--data-dir", str(data_dir), "--n", str(n)] + ["--trace"] * trace
    out = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if out.returncode:
        sys.exit(f"{side} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_spec(folder: Path, hub: Path, planted: Path, rows: int) -> Path:
    path = folder / f"mixture-{rows}.toml"
    path.write_text(
        f'[[tasks]]\ncustomjson = "{planted}"\nlabel = "planted"\n\n'
        f'[[tasks]]\ntask = "SmolTalk"\nargs = {{ split = "train", data_dir = "{hub}", stop = {rows} }}\n'
    )
    return path


def cpu() -> str:
    model = platform.processor() or "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    simd = [name for name in ("SSE42", "AVX2", "AVX512F", "AVX512_SPR", "ASIMD") if features.get(name)]
    return f"{model}, {os.cpu_count()} CPUs, numpy SIMD: {' '.join(simd) or 'none'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=460_000)
    parser.add_argument("--baseline-rows", type=int, default=46_000)
    parser.add_argument("--memory-rows", type=int, default=20_000)
    parser.add_argument("--n", type=int, default=13)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "hub")
    parser.add_argument("--worker", choices=["chattasks", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import pyarrow.parquet as pq
    from bench_smoltalk_scale import generate

    print(cpu())
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        os.environ["CHATTASKS_CACHE_DIR"] = str(folder / "cache")
        hub = folder / "hub"
        split_dir = hub / "HuggingFaceTB" / "smol-smoltalk" / "default"
        split_dir.mkdir(parents=True)
        pq.write_table(generate(args.rows), split_dir / "train-00000-of-00001.parquet")
        planted = plant(folder / "planted.jsonl", args.data_dir)
        specs = {
            rows: write_spec(folder, hub, folder / "planted.jsonl", rows)
            for rows in {args.rows, args.baseline_rows, args.memory_rows}
        }
        print(
            f"{args.rows:,} SmolTalk-schema rows + {planted} planted conversations; tasks: {', '.join(TASKS)}"
        )
        run(specs[args.memory_rows], "chattasks", args.data_dir, args.n, False)  # warm the Arrow caches
        ours = run(specs[args.rows], "chattasks", args.data_dir, args.n, False)
        ours_prefix = run(specs[args.baseline_rows], "chattasks", args.data_dir, args.n, False)
        base = run(specs[args.baseline_rows], "baseline", args.data_dir, args.n, False)
        mem_ours = run(specs[args.memory_rows], "chattasks", args.data_dir, args.n, True)
        mem_base = run(specs[args.memory_rows], "baseline", args.data_dir, args.n, True)
        mem_full = run(specs[args.rows], "chattasks", args.data_dir, args.n, True)
    if ours_prefix["found"] != base["found"] or ours["found"] != ours_prefix["found"]:
        sys.exit("MISMATCH: chattasks and the baseline found different matches")
    counts = ", ".join(f"{task} {len(items)}" for task, items in ours["found"].items())
    print(f"contaminated items (both sides agree on every first match): {counts}")
    mib = 2**20
    print(f"{'':10}{'rows':>9}{'index s':>9}{'scan s':>8}{'rows/s':>9}{'peak traced':>13}{'peak RSS*':>10}")
    for label, timed, traced in (("chattasks", ours, mem_ours), ("baseline", base, mem_base)):
        index, scan = timed["seconds"]["index"], timed["seconds"]["scan"]
        print(
            f"{label:10}{timed['rows']:>9,}{index:>9.1f}{scan:>8.1f}{timed['rows'] / scan:>9,.0f}"
            f"{traced['peak'] / mib:>9.1f} MiB{timed['maxrss'] / mib:>6.0f} MiB"
        )
    print("* RSS counts the interpreter, the libraries and the memory-mapped rows each side read")
    speed = (ours["rows"] / ours["seconds"]["scan"]) / (base["rows"] / base["seconds"]["scan"])
    print(
        f"chattasks: {speed:.1f}x the baseline's rows/s (goal >= 5x), "
        f"{mem_base['peak'] / mem_ours['peak']:.1f}x less peak traced memory on {mem_ours['rows']:,} rows "
        f"(goal >= 5x); its peak traced memory over all {mem_full['rows']:,} rows: {mem_full['peak'] / mib:.1f} MiB"
    )


if __name__ == "__main__":
    main()
