"""Generation throughput on GSM8K: chattasks' continuous batching against plain transformers batches.

The same prompts (the first ``--n`` rows of chattasks' GSM8K test view, 16 by default, the chat
template applied exactly as the backend applies it), the same model (the embedded
SmolLM2-135M-Instruct unless ``--model``/``--gguf-file``), float32 unless ``--dtype``, greedy,
``--max-new-tokens`` (256), in one process:

- ``plain static``: transformers ``model.generate`` on left padded static batches of
  ``--static-batch-size`` (8) prompts, in order, each batch running until its longest reply ends
  (the baseline of the goal);
- ``plain static N``: the same with chattasks' own ``--batch-size`` rows per batch (when it
  differs), so the gain of continuous batching at an equal batch size shows too
  (``--skip-equal`` leaves it out);
- ``chattasks``: ``HFBackend.generate_tokens`` with ``--batch-size`` (16) slots, continuous
  batching (a finished reply's slot takes the next prompt at once);
- ``plain batch 1``: ``model.generate`` on one unpadded prompt at a time, the reference a greedy
  reply should equal (``--skip-batch1`` leaves it out).

Tokens counted are each reply's tokens up to and including its stop token (what the model had to
write); tokens/s is that total over the wall time of the generation calls, and tokens per CPU
second the same over the process's CPU time (steadier on a shared machine with ``--threads 1``,
where no thread waits for another). ``--repeat R`` runs plain static and chattasks R times,
interleaved, and keeps each one's best times (the machine may be shared). The report gives tokens/s, the ratio of chattasks to plain static batching (goal:
>= 1.5x), whether chattasks' texts equal plain static batching's, and how many replies of each
differ from the batch-size-1 replies.

Run: ``python bench/bench_generate.py [--n 16] [--max-new-tokens 256] [--batch-size 16]
[--data-dir ../shared/data/hub] [--repeat 1] [--threads N] [--skip-batch1] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from cpu_info import cpu_line

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "hub"
GOAL = 1.5


def cpu_features() -> str:
    """The machine line of every bench, plus torch's threads and CPU kernel level."""
    import torch

    return (
        f"{cpu_line()} | torch threads {torch.get_num_threads()}, "
        f"CPU kernels {torch.backends.cpu.get_cpu_capability()}"
    )


def until_stop(tokens: list[int], stop: set[int]) -> list[int]:
    """A reply's tokens up to and including its first stop token."""
    end = next((n + 1 for n, token in enumerate(tokens) if token in stop), len(tokens))
    return tokens[:end]


def plain_generate(
    backend: Any, rows: list[list[int]], batch_size: int, max_new_tokens: int
) -> list[list[int]]:
    """transformers ``model.generate`` on left padded static batches of ``batch_size``, in order."""
    import torch
    import transformers

    pad = backend.tokenizer.pad_token_id
    settings = transformers.GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=backend.stop_ids,
        pad_token_id=backend.stop_ids[0] if pad is None else pad,
    )
    replies = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(len(row) for row in batch)
        ids = torch.full((len(batch), width), settings.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        with torch.inference_mode():
            out = backend.model.generate(
                input_ids=ids.to(backend.device),
                attention_mask=mask.to(backend.device),
                generation_config=settings,
            )
        replies.extend(until_stop(row[width:], set(backend.stop_ids)) for row in out.tolist())
    return replies


def chattasks_generate(backend: Any, rows: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """chattasks' continuous batching."""
    from chattasks.eval.backends.base import GenerationConfig

    replies = backend.generate_tokens(rows, GenerationConfig(max_new_tokens=max_new_tokens))
    return [samples[0] for samples in replies]


def timed(run: Any, *args: Any) -> tuple[float, float, list[list[int]]]:
    """(wall seconds, CPU seconds of this process, replies) of one run."""
    started, cpu = time.perf_counter(), time.process_time()
    replies = run(*args)
    return time.perf_counter() - started, time.process_time() - cpu, replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=16, help="prompts (the first N of GSM8K test)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16, help="chattasks: slots (rows decoding at once)")
    parser.add_argument("--static-batch-size", type=int, default=8, help="plain transformers: rows per batch")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: embedded SmolLM2)")
    parser.add_argument("--gguf-file", default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-batch1", action="store_true", help="do not run the batch-size-1 reference")
    parser.add_argument(
        "--skip-equal", action="store_true", help="do not run plain static batches of --batch-size rows"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1 or args.max_new_tokens < 1:
        parser.error("--n, --repeat and --max-new-tokens must be >= 1")

    import torch

    from chattasks.eval.backends.hf import HFBackend
    from chattasks.eval.scorers.base import prompt_of
    from chattasks.tasks.gsm8k import GSM8K

    if args.threads:
        torch.set_num_threads(args.threads)
    task = GSM8K("main", "test", data_dir=args.data_dir)
    backend = HFBackend(
        args.model, gguf_file=args.gguf_file, device=args.device, dtype=args.dtype, batch_size=args.batch_size
    )
    rows = [backend.chat_ids(prompt_of(task[i])) for i in range(min(args.n, len(task)))]
    info = backend.describe()
    print(cpu_features())
    print(
        f"model {info['model']} {info['gguf_file'] or ''} | {info['dtype']} on {info['device']} | "
        f"{len(rows)} GSM8K test prompts of {min(map(len, rows))}-{max(map(len, rows))} tokens, greedy, "
        f"{args.max_new_tokens} new tokens | torch {info['torch']} transformers {info['transformers']} | "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    plain_generate(backend, rows[:2], 2, 4)  # warm-up: first calls set up kernels and caches
    chattasks_generate(backend, rows[:2], 4)

    best: dict[str, tuple[float, float]] = {}  # name: (wall seconds, CPU seconds), each the least seen
    replies: dict[str, list[list[int]]] = {}
    runs: list[tuple[str, Any, tuple[int, ...]]] = [
        ("plain static", plain_generate, (args.static_batch_size, args.max_new_tokens)),
        ("chattasks", chattasks_generate, (args.max_new_tokens,)),
    ]
    if args.batch_size != args.static_batch_size and not args.skip_equal:
        runs.append(
            (f"plain static {args.batch_size}", plain_generate, (args.batch_size, args.max_new_tokens))
        )
    runs *= args.repeat
    if not args.skip_batch1:
        runs.append(("plain batch 1", plain_generate, (1, args.max_new_tokens)))
    for name, run, extra in runs:
        wall, cpu, replies[name] = timed(run, backend, rows, *extra)
        seen = best.get(name, (wall, cpu))
        best[name] = (min(wall, seen[0]), min(cpu, seen[1]))
        print(f"  {name:14s} {wall:7.2f} s wall, {cpu:7.2f} s CPU", flush=True)
    report(args, backend, best, replies)
    backend.close()
    return 0


def report(
    args: Any, backend: Any, best: dict[str, tuple[float, float]], replies: dict[str, list[list[int]]]
) -> None:
    """Print tokens/s, the ratio, identical texts and differences from batch 1; write --json."""
    tokens = {name: sum(len(r) for r in found) for name, found in replies.items()}
    speed = {name: tokens[name] / best[name][0] for name in best}
    per_cpu = {name: tokens[name] / best[name][1] for name in best}
    base, base_cpu = speed["plain static"], per_cpu["plain static"]
    print(
        f"\n{'':14s} {'wall s':>8s} {'CPU s':>8s} {'tokens':>7s} {'tokens/s':>9s} "
        f"{'vs plain static':>16s} {'(per CPU second)':>17s}"
    )
    for name, (wall, cpu) in best.items():
        print(
            f"{name:14s} {wall:8.2f} {cpu:8.2f} {tokens[name]:7d} {speed[name]:9.1f} "
            f"{speed[name] / base:15.2f}x {per_cpu[name] / base_cpu:16.2f}x"
        )
    texts = {name: [backend.reply_text(r) for r in found] for name, found in replies.items()}
    same = texts["chattasks"] == texts["plain static"]
    ratio = speed["chattasks"] / base
    print(
        f"chattasks >= {GOAL}x plain static batching: {'MET' if ratio >= GOAL else 'MISSED'} ({ratio:.2f}x)"
    )
    print(f"chattasks texts identical to plain static batching's: {same}")
    equal = f"plain static {args.batch_size}"
    if equal in speed:
        print(f"chattasks vs {equal} (the same batch size): {speed['chattasks'] / speed[equal]:.2f}x")
    differ: dict[str, int] = {}
    if "plain batch 1" in replies:
        for name in ("chattasks", "plain static"):
            differ[name] = sum(a != b for a, b in zip(replies[name], replies["plain batch 1"]))
            print(
                f"{name} replies differing from batch-size-1 replies: {differ[name]} of {len(replies[name])}"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        payload = {
            "n": len(replies["chattasks"]),
            "max_new_tokens": args.max_new_tokens,
            "model": backend.describe(),
            "wall_seconds": {name: wall for name, (wall, _) in best.items()},
            "cpu_seconds": {name: cpu for name, (_, cpu) in best.items()},
            "tokens": tokens,
            "tokens_per_s": speed,
            "tokens_per_cpu_s": per_cpu,
            "ratio": ratio,
            "ratio_same_batch_size": speed["chattasks"] / speed[equal] if equal in speed else None,
            "texts_identical": same,
            "differ_from_batch1": differ,
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    sys.exit(main())
