"""One evaluation over several processes: torchrun detection, the process group, the barrier.

Launch any evaluation under torchrun and every process (rank) scores its own share of the rows,
all appending to one run directory; rank 0 waits for the others, then writes results.json::

    torchrun --nproc_per_node 8 -m chattasks eval --model M --output RUN_DIR

In code, ``from_environment()`` gives the hook ``evaluate_model`` takes::

    from chattasks.eval import distributed
    with distributed.from_environment() as dist:
        evaluate_model(model, tasks, output=run_dir, distributed=dist)

Rank, world size and local rank come from torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
variables. The process group is ``nccl`` when CUDA is available (each process then uses GPU
``LOCAL_RANK``), else ``gloo``. Outside torchrun (or with ``WORLD_SIZE=1``) the hook is a single
process and every call is a no-op, so code written for several ranks runs unchanged on one.

The group carries nothing but barriers: samples travel through the journal files, so ranks
never exchange tensors and a run can just as well be spread over machines that share a disk.
The default barrier timeout is long (``DEFAULT_TIMEOUT``) because ranks finish their shares at
different times; a rank that dies still makes the others fail at the timeout, never hang forever.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chattasks.errors import BackendError

DEFAULT_TIMEOUT = _dt.timedelta(hours=6)
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

T = TypeVar("T")


def torchrun_env(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) set by torchrun, or None when not launched by it.

    ValueError names a variable that is set but not a valid number.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    values = []
    for key in ENV_KEYS:
        raw = env.get(key, "0" if key == "LOCAL_RANK" else "")
        try:
            values.append(int(raw))
        except ValueError:
            raise ValueError(
                f"environment variable {key}={raw!r} must be an integer (as torchrun sets it)"
            ) from None
    rank, world_size, local_rank = values
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}: need 0 <= RANK < WORLD_SIZE"
        )
    return rank, world_size, local_rank


@dataclass
class Distributed:
    """This process's place among the ranks of one run, and the barrier they share."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "gloo" or "nccl" once a process group is up; None on one process
    _closed: bool = field(default=False, repr=False)

    def is_main(self) -> bool:
        """Whether this is rank 0, the one that merges and reports."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here (a no-op on one process)."""
        if self.backend is None or self._closed:
            return
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run ``fn`` on rank 0 once every rank got here; every rank returns after it ran.

        Rank 0 gets ``fn()``'s value, the others None. This is how a merge step is written.
        """
        self.barrier()
        value = fn() if self.is_main() else None
        self.barrier()
        return value

    def close(self) -> None:
        """Leave the process group (idempotent)."""
        if self.backend is None or self._closed:
            return
        self._closed = True
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def from_environment(backend: str | None = None, *, timeout: _dt.timedelta = DEFAULT_TIMEOUT) -> Distributed:
    """The ``Distributed`` hook of this process: joins torchrun's process group when there is one.

    ``backend``: ``gloo`` or ``nccl`` (None: nccl with CUDA, else gloo). Under CUDA the process
    takes GPU ``LOCAL_RANK``. The group is left at interpreter exit if ``close`` was not called.
    """
    env = torchrun_env()
    if env is None or env[1] == 1:
        rank, world_size, local_rank = env or (0, 1, 0)
        return Distributed(rank, world_size, local_rank)
    rank, world_size, local_rank = env
    if backend not in (None, "gloo", "nccl"):
        raise ValueError(f"backend must be gloo, nccl or None (automatic); got {backend!r}")
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise BackendError("running under torchrun needs torch: pip install 'chattasks[hf]'") from None
    cuda = torch.cuda.is_available()
    chosen = backend or ("nccl" if cuda else "gloo")
    if chosen == "nccl" and not cuda:
        raise BackendError("the nccl backend needs CUDA GPUs; use gloo on CPU")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(chosen, rank=rank, world_size=world_size, timeout=timeout)
    hook = Distributed(rank, world_size, local_rank, chosen)
    atexit.register(hook.close)
    return hook
