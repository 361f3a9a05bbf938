"""Categorical throughput on ARC-Easy: chattasks' ``letter`` and ``loglik`` scorers against lm-eval.

The same questions (the first ``--n`` rows of chattasks' ARC-Easy test view, 300 by default), the
same model (the embedded SmolLM2-135M-Instruct GGUF unless ``--model``/``--gguf-file``), the same
dtype and device, in one process:

- ``lm-eval``: EleutherAI's harness (``pip install lm-eval``), its ``HFLM`` at ``--lm-eval-batch-size``
  (8), on a task config equal to its ``arc_easy`` (``"Question: {question}\\nAnswer:"``, the
  choice texts as continuations, acc and acc_norm) but reading a local JSONL of those rows;
- ``chattasks letter``: ``evaluate_model(..., mc_scorer="letter")``, nanochat's scoring;
- ``chattasks loglik``: ``evaluate_model(..., mc_scorer="loglik")``, lm-eval's scoring;

both with ``--runner-batch-size`` (128) questions per backend call, which the backend sorts by
length into forward passes of at most ``--batch-size`` (16) rows (lm-eval sorts all its requests).

Model loading is timed apart; the questions/second count everything else (dataset, prompts,
tokenising, forward passes, grading, bookkeeping); ``lm-eval (model)`` is the part of lm-eval's
time spent inside ``HFLM.loglikelihood`` (tokenising and forward passes only), a stricter yardstick
shown beside it; the ratios and goals use lm-eval's whole time. ``--repeat R`` runs the three R times,
interleaved, and keeps each one's best time (the machine may be shared). The report gives
questions/second, the ratio to lm-eval, the accuracies, and for ``loglik`` the largest difference
between lm-eval's log-likelihoods and chattasks' on the same question and choice. Goals (from
the issue): ``letter`` >= 3x lm-eval's questions/second; ``loglik`` >= 1.5x with acc and acc_norm
within 0.01 of lm-eval's.

Where the time can go: forward hooks on every ``nn.Linear`` of both models count the multiply-adds
each run asks of its weight matrices (padding included, attention scores excluded), and a matmul of
the model's own largest layer shape at 2048 rows measures this machine's matmul speed in the
model's dtype. Their quotient is the least time each run's matmuls can take, so lm-eval's time
divided by it bounds the ratio any implementation of the same computation could reach here.

Run: ``python bench/bench_eval_arc.py [--n 300] [--data-dir ../shared/data/hub] [--repeat 1]
[--dtype auto] [--skip-lm-eval] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "hub"
TASK = "ARC-Easy"
LETTER_GOAL, LOGLIK_GOAL, ACC_TOLERANCE = 3.0, 1.5, 0.01


def lm_eval_task(data_file: Path) -> dict[str, Any]:
    """lm-eval's ``arc_easy`` config, reading ``data_file`` (JSONL of ARC rows) instead of the Hub."""
    return {
        "task": "arc_easy_chattasks_bench",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "output_type": "multiple_choice",
        "test_split": "test",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "doc_to_choice": "{{choices.text}}",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    }


def load_lm_eval(model: str, gguf_file: str | None, dtype: str, device: str, batch_size: int) -> Any:
    """lm-eval's HFLM on the same weights."""
    from lm_eval.models.huggingface import HFLM

    args: dict[str, Any] = {"pretrained": model, "dtype": dtype, "device": device, "batch_size": batch_size}
    if gguf_file:
        args["gguf_file"] = gguf_file
    return HFLM(**args)


def run_lm_eval(lm: Any, data_file: Path) -> tuple[float, float, dict[str, float], dict[int, list[float]]]:
    """(seconds, seconds inside ``loglikelihood``, {acc, acc_norm}, per-question log-likelihoods) of one run."""
    import lm_eval

    inside = [0.0]
    score = type(lm).loglikelihood

    def timed(requests: Any, *rest: Any, **options: Any) -> Any:
        begun = time.perf_counter()
        try:
            return score(lm, requests, *rest, **options)
        finally:
            inside[0] += time.perf_counter() - begun

    lm.loglikelihood = timed
    started = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[lm_eval_task(data_file)], bootstrap_iters=0, log_samples=True, verbosity="ERROR"
    )
    seconds = time.perf_counter() - started
    del lm.loglikelihood
    if out is None:
        raise RuntimeError("lm-eval returned no results")
    metrics = out["results"]["arc_easy_chattasks_bench"]
    scores = {"acc": float(metrics["acc,none"]), "acc_norm": float(metrics["acc_norm,none"])}
    sums = {
        int(sample["doc_id"]): [float(resp[0][0]) for resp in sample["resps"]]
        for sample in out["samples"]["arc_easy_chattasks_bench"]
    }
    return seconds, inside[0], scores, sums


def run_chattasks(
    backend: Any, scorer: str, n: int, data_dir: Path, batch_size: int
) -> tuple[float, dict[str, float], Any]:
    """(seconds, {acc[, acc_norm]}, journal records) of one evaluate_model run."""
    from chattasks.eval.journal import RunDirectory
    from chattasks.eval.runner import evaluate_model

    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        results = evaluate_model(
            backend,
            [TASK],
            limit=n,
            mc_scorer=scorer,
            data_dir=data_dir,
            output=run_dir,
            progress=False,
            batch_size=batch_size,
        )
        seconds = time.perf_counter() - started
        records = RunDirectory(run_dir).read(TASK).records
    result = results[TASK]
    scores = {"acc": float(result.accuracy or 0.0)}
    if result.acc_norm is not None:
        scores["acc_norm"] = result.acc_norm
    return seconds, scores, records


class WorkMeter:
    """Multiply-adds a model's ``nn.Linear`` layers perform, counted by forward hooks, per label."""

    def __init__(self, model: Any) -> None:
        import torch

        self.label = "warm-up"
        self.macs: dict[str, int] = {}
        self._handles = [
            module.register_forward_hook(self._count)
            for module in model.modules()
            if isinstance(module, torch.nn.Linear)
        ]

    def _count(self, module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        rows = inputs[0].numel() // module.in_features
        self.macs[self.label] = self.macs.get(self.label, 0) + rows * module.in_features * module.out_features

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


def matmul_speed(model: Any, rows: int = 2048, tries: int = 5) -> float:
    """FLOP/s of this machine's best matmul with the model's largest ``nn.Linear`` shape and dtype."""
    import torch

    head = model.get_output_embeddings()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    largest = max(layers, key=lambda m: m.weight.numel())
    weight = largest.weight.detach()
    x = torch.randn(rows, largest.in_features, dtype=weight.dtype, device=weight.device)
    on_gpu = weight.device.type == "cuda"
    best = float("inf")
    with torch.inference_mode():
        for attempt in range(tries + 1):  # the first is a warm-up
            if on_gpu:
                torch.cuda.synchronize()
            started = time.perf_counter()
            torch.nn.functional.linear(x, weight)
            if on_gpu:
                torch.cuda.synchronize()
            if attempt:
                best = min(best, time.perf_counter() - started)
    return 2 * weight.numel() * rows / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="questions (the first N of ARC-Easy test)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: embedded SmolLM2)")
    parser.add_argument("--gguf-file", default=None)
    parser.add_argument(
        "--dtype", default="auto", help="auto (chattasks' choice, used for both), float32, ..."
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=16, help="chattasks: rows per forward pass")
    parser.add_argument(
        "--runner-batch-size",
        type=int,
        default=128,
        help="chattasks: questions per backend call, sorted by length within it (lm-eval sorts all)",
    )
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be >= 1")

    from chattasks.eval.backends.hf import HFBackend
    from chattasks.tasks.arc import ARC

    task = ARC("ARC-Easy", "test", data_dir=args.data_dir)
    n = min(args.n, len(task))
    started = time.perf_counter()
    backend = HFBackend(
        args.model, gguf_file=args.gguf_file, device=args.device, dtype=args.dtype, batch_size=args.batch_size
    )
    load = {"chattasks": time.perf_counter() - started}
    info = backend.describe()
    print(
        f"model {info['model']} {info['gguf_file'] or ''} | {info['dtype']} on {info['device']} | "
        f"{n} ARC-Easy test questions | torch {info['torch']} transformers {info['transformers']} | "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    lm = None
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "arc_easy_test_subset.jsonl"
        with data_file.open("w") as handle:
            for i in range(n):
                handle.write(json.dumps(task.rows[i]) + "\n")
        if not args.skip_lm_eval:
            started = time.perf_counter()
            lm = load_lm_eval(
                info["source"], info["gguf_file"], info["dtype"], info["device"], args.lm_eval_batch_size
            )
            load["lm-eval"] = time.perf_counter() - started
        best: dict[str, float] = {}
        scores: dict[str, dict[str, float]] = {}
        records: dict[str, Any] = {}
        lm_sums: dict[int, list[float]] = {}
        our_work = WorkMeter(backend.model)
        their_work = WorkMeter(lm.model) if lm is not None else None
        for repeat in range(args.repeat):
            if lm is not None and their_work is not None:
                their_work.label = "lm-eval" if repeat == 0 else "repeats"
                seconds, inside, scores["lm-eval"], lm_sums = run_lm_eval(lm, data_file)
                best["lm-eval"] = min(seconds, best.get("lm-eval", float("inf")))
                best["lm-eval (model)"] = min(inside, best.get("lm-eval (model)", float("inf")))
                scores["lm-eval (model)"] = scores["lm-eval"]
                print(f"  lm-eval           {seconds:7.2f} s ({inside:.2f} s in loglikelihood)", flush=True)
            for scorer in ("letter", "loglik"):
                name = f"chattasks {scorer}"
                our_work.label = name if repeat == 0 else "repeats"
                seconds, scores[name], records[name] = run_chattasks(
                    backend, scorer, n, args.data_dir, args.runner_batch_size
                )
                best[name] = min(seconds, best.get(name, float("inf")))
                print(f"  {name:17s} {seconds:7.2f} s", flush=True)

    gap = None
    if lm_sums:
        ours = {
            index: record["details"]["loglik"] for (index, _), record in records["chattasks loglik"].items()
        }
        gap = max(
            abs(a - b[0])
            for index, sums in lm_sums.items()
            for a, b in zip(sums, ours[index])
            if b[0] is not None
        )
    print("\nload: " + ", ".join(f"{k} {v:.1f} s" for k, v in load.items()))
    print(f"{'':18s} {'seconds':>8s} {'q/s':>7s} {'vs lm-eval':>10s} {'acc':>7s} {'acc_norm':>8s}")
    base = best.get("lm-eval")
    for name, seconds in best.items():
        ratio = f"{base / seconds:9.2f}x" if base else "        -"
        acc = scores[name]
        norm = f"{acc['acc_norm']:8.4f}" if "acc_norm" in acc else f"{'-':>8s}"
        print(f"{name:18s} {seconds:8.2f} {n / seconds:7.2f} {ratio:>10s} {acc['acc']:7.4f} {norm}")
    verdicts = []
    if base:
        strict = best["lm-eval (model)"]
        letter = base / best["chattasks letter"]
        loglik = base / best["chattasks loglik"]
        same = all(
            abs(scores["chattasks loglik"][m] - scores["lm-eval"][m]) <= ACC_TOLERANCE
            for m in ("acc", "acc_norm")
        )
        verdicts.append(
            f"letter >= {LETTER_GOAL}x lm-eval: {'MET' if letter >= LETTER_GOAL else 'MISSED'} ({letter:.2f}x)"
        )
        verdicts.append(
            f"loglik >= {LOGLIK_GOAL}x lm-eval with acc/acc_norm within {ACC_TOLERANCE}: "
            f"{'MET' if loglik >= LOGLIK_GOAL and same else 'MISSED'} ({loglik:.2f}x, same accuracy: {same})"
        )
        verdicts.append(
            f"against lm-eval's time inside loglikelihood only: letter {strict / best['chattasks letter']:.2f}x, "
            f"loglik {strict / best['chattasks loglik']:.2f}x"
        )
        verdicts.append(f"largest |lm-eval - chattasks| log-likelihood of a choice: {gap:.2e} nats")
    our_work.close()
    macs = {name: our_work.macs[name] for name in ("chattasks letter", "chattasks loglik")}
    if their_work is not None:
        their_work.close()
        macs = {"lm-eval": their_work.macs["lm-eval"], **macs}
    speed = matmul_speed(backend.model)
    floors = {name: 2 * count / speed for name, count in macs.items()}
    verdicts.append(
        "matmul work (weights, padding included): "
        + ", ".join(f"{name} {2 * count / 1e12:.2f} TFLOP" for name, count in macs.items())
        + f"; this machine's {info['dtype']} matmul speed: {speed / 1e9:.0f} GFLOP/s"
    )
    for name in ("chattasks letter", "chattasks loglik"):
        bound = f", so at most {base / floors[name]:.2f}x lm-eval here" if base else ""
        verdicts.append(
            f"{name}: its matmuls alone take >= {floors[name]:.1f} s of its {best[name]:.1f} s{bound}"
        )
    print("\n".join(verdicts))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        payload = {
            "n": n,
            "model": info,
            "load_s": load,
            "seconds": best,
            "scores": scores,
            "loglik_gap": gap,
            "matmul_flop": {name: 2 * count for name, count in macs.items()},
            "matmul_flop_per_s": speed,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
