"""torch datasets over a packing plan: map-style rows, or batches sharded by DataLoader worker and resumable.

- ``PackedDataset(plan)``: row ``i`` of the plan (map-style; any sampler; ``__getitems__`` renders a
  whole batch of rows in one tokenizer call).
- ``PackedIterableDataset(plan, batch_size)``: the batches of an epoch (``PackingPlan.batches``).
  Worker ``w`` of ``n`` renders batches ``start+w, start+w+n, ...``; a DataLoader with
  ``batch_size=None`` reads workers round-robin, so the stream is the same for any ``num_workers``.
- ``SFTDataLoader(dataset, num_workers=...)``: that DataLoader, counting the batches it hands out;
  ``state_dict()``/``load_state_dict()`` resume at exactly the next batch an uninterrupted run would
  have produced, whatever ``num_workers`` before and after.

Sharding across ranks is the plan's (``PackingPlan(..., rank=, world_size=)``, nanochat's stride).
Ranks may get different numbers of batches; stop every rank at the smallest (nanochat stops all
ranks when the first runs out).

Each batch (or row) is a dict of tensors: ``input_ids``, ``labels`` (ids where trained, else
``ignore_index``, unshifted as Hugging Face models expect), ``position_ids`` (restart per
conversation), ``loss_mask`` (bool) and ``document_ids`` (-1 on padding). torch is imported here
only; the rest of ``chattasks.sft`` works with numpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from chattasks.sft.pack import PackedBatch
from chattasks.sft.plan import PackingPlan

try:
    import torch
    from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "chattasks.sft.loader needs torch: pip install 'chattasks[hf]' (or torch alone)"
    ) from exc


def to_tensors(batch: PackedBatch, ignore_index: int = -100) -> dict[str, torch.Tensor]:
    """A PackedBatch as a dict of torch tensors (see the module docstring for the keys)."""
    return {
        "input_ids": torch.from_numpy(batch.input_ids).long(),
        "labels": torch.from_numpy(batch.labels(ignore_index)),
        "position_ids": torch.from_numpy(batch.position_ids).long(),
        "loss_mask": torch.from_numpy(batch.loss_mask).bool(),
        "document_ids": torch.from_numpy(batch.document_ids),
    }


class PackedDataset(Dataset):
    """The plan's rows, one dict of 1-D tensors per index."""

    def __init__(self, plan: PackingPlan, *, ignore_index: int = -100) -> None:
        self.plan = plan
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return self.plan.num_rows

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """Several rows, rendered together (DataLoader calls this for a whole batch)."""
        rows = [range(self.plan.num_rows)[i] for i in indices]  # IndexError, negatives allowed
        tensors = to_tensors(self.plan.render_rows(rows), self.ignore_index)
        return [{key: value[k] for key, value in tensors.items()} for k in range(len(rows))]


def _quiet_tokenizers(_: int) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # no fork warning; each worker encodes on one thread


class PackedIterableDataset(IterableDataset):
    """Batches of an epoch of the plan, sharded by worker; iterate it with ``batch_size=None`` loaders."""

    def __init__(
        self,
        plan: PackingPlan,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        ignore_index: int = -100,
    ) -> None:
        self.plan = plan
        self.batch_size = batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.ignore_index = ignore_index
        self.num_batches = plan.num_batches(batch_size, drop_last=drop_last)
        self.epoch = 0
        self.batch = 0  # the next batch this object yields (in this process)

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Start reading ``epoch`` from its first batch."""
        self.epoch, self.batch = epoch, 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        epoch, start = self.epoch, self.batch
        order = self.plan.row_order(epoch, shuffle=self.shuffle, seed=self.seed)
        for batch in range(start + worker, self.num_batches, workers):
            rows = self.plan.batch_rows(batch, self.batch_size, order)
            tensors = to_tensors(self.plan.render_rows(rows), self.ignore_index)
            self.batch = batch + 1
            yield tensors
        if info is None:
            self.epoch, self.batch = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """Where this object's next batch is: epoch, batch, and the plan's fingerprint."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "fingerprint": self.plan.fingerprint(),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (ValueError if it comes from a different plan or batching)."""
        mine = self.state_dict()
        for key in ("fingerprint", "batch_size", "shuffle", "seed"):
            if state.get(key) != mine[key]:
                raise ValueError(f"state {key} is {state.get(key)!r}, this dataset has {mine[key]!r}")
        batch = int(state["batch"])
        if not 0 <= batch <= self.num_batches:
            raise ValueError(f"state batch {batch} out of range 0..{self.num_batches}")
        self.epoch, self.batch = int(state["epoch"]), batch


class SFTDataLoader:
    """A DataLoader over a PackedIterableDataset that counts what it hands out and can resume there.

    Each ``iter()`` runs the rest of the current epoch, then moves to the next. ``loader_kwargs``
    go to ``torch.utils.data.DataLoader`` (``pin_memory``, ``prefetch_factor``, ...).
    """

    def __init__(self, dataset: PackedIterableDataset, *, num_workers: int = 0, **loader_kwargs: Any) -> None:
        if loader_kwargs.get("batch_size", None) is not None:
            raise ValueError("SFTDataLoader batches in the dataset: do not pass batch_size")
        loader_kwargs.pop("batch_size", None)
        self.dataset = dataset
        self.num_workers = num_workers
        self.loader_kwargs = loader_kwargs
        self.epoch, self.batch = dataset.epoch, dataset.batch

    def __len__(self) -> int:
        return self.dataset.num_batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self.dataset.epoch, self.dataset.batch = self.epoch, self.batch
        if self.batch < self.dataset.num_batches:
            loader = DataLoader(
                self.dataset,
                batch_size=None,
                num_workers=self.num_workers,
                worker_init_fn=_quiet_tokenizers if self.num_workers else None,
                **self.loader_kwargs,
            )
            for item in loader:
                self.batch += 1  # counted when handed out, so a checkpoint taken now resumes after it
                yield item
        self.epoch, self.batch = self.epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """The position of the next batch this loader will hand out (save it with your checkpoint)."""
        state = self.dataset.state_dict()
        state.update(epoch=self.epoch, batch=self.batch)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state`` (from ``state_dict``, with any number of workers then and now)."""
        self.dataset.load_state_dict(state)
        self.epoch, self.batch = self.dataset.epoch, self.dataset.batch
