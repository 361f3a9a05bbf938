"""A packing plan: which conversations of one rank fill which row, fixed before training starts.

``PackingPlan(task, renderer, max_len, rank=r, world_size=w)`` reads rows ``r, r+w, r+2w, ...`` of
the task (nanochat's stride: every row of the task goes to exactly one rank), measures them
(``measure``), truncates to ``max_len``, drops and counts the ones with no trained token, and packs
the rest with nanochat's buffered best-fit (``pack.best_fit``) -- the same rows ``Packer`` would give
on the same stream. Only indices are kept; a row's tokens are rendered when it is asked for.

Because the plan is fixed, any row and any batch can be produced alone: that is what lets the
loaders shard by DataLoader worker and resume at any batch, whatever the number of workers. The
price is one measuring pass before the first batch; ``save``/``load`` keep the plan between runs.

Batches of epoch ``e``: rows in plan order, or, with ``shuffle=True``, in the order
``numpy.random.default_rng([seed, e]).permutation(num_rows)``; batch ``k`` holds rows
``k*batch_size`` up to ``(k+1)*batch_size`` of that order (the last batch may be smaller).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from chattasks.errors import RenderError
from chattasks.sft.measure import Measurement, measure
from chattasks.sft.pack import PackedBatch, PackReport, assemble, best_fit
from chattasks.sft.renderer import Renderer


class PackingPlan:
    """Rows of one rank's conversations, as indices into ``task`` (see the module docstring)."""

    def __init__(
        self,
        task: Any,
        renderer: Renderer,
        max_len: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        buffer_size: int = 100,
        progress: Callable[[int], None] | None = None,
        measurement: Measurement | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"rank must be in 0..world_size-1 with world_size >= 1, got rank={rank}, world_size={world_size}"
            )
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2, got {max_len}")
        self.task = task
        self.renderer = renderer
        self.max_len = max_len
        self.rank, self.world_size, self.buffer_size = rank, world_size, buffer_size
        self.indices = np.arange(rank, len(task), world_size, dtype=np.int64)
        if measurement is None:
            measurement = measure(task, renderer, self.indices, max_len=max_len, progress=progress)
        elif len(measurement) != len(self.indices):
            raise ValueError(
                f"measurement holds {len(measurement)} conversations, this rank has {len(self.indices)}"
            )
        self._layout(measurement)

    def _layout(self, m: Measurement) -> None:
        kept_lengths = np.minimum(m.lengths, self.max_len).astype(np.int64)
        keep = m.kept_trained > 0
        truncated = m.lengths > self.max_len
        pairs = zip(kept_lengths[keep].tolist(), self.indices[keep].tolist())
        rows = list(best_fit(pairs, self.max_len, length=lambda pair: pair[0], buffer_size=self.buffer_size))
        sizes = [len(row) for row in rows]
        self.row_offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.doc_order = np.array([index for row in rows for _, index in row], dtype=np.int64)
        self.doc_lengths = np.array([size for row in rows for size, _ in row], dtype=np.int32)
        self.dropped = self.indices[~keep]
        tokens = int(kept_lengths[keep].sum())
        self.report = PackReport(
            conversations=len(self.indices),
            rows=len(rows),
            tokens=tokens,
            trained_tokens=int(m.kept_trained[keep].sum()),
            padding_tokens=len(rows) * self.max_len - tokens,
            truncated_conversations=int(truncated.sum()),
            truncated_tokens=int((m.lengths.astype(np.int64) - kept_lengths)[truncated].sum()),
            truncated_trained_tokens=int((m.trained - m.kept_trained).sum()),
            dropped_untrained=int((~keep).sum()),
            packed_conversations=int(keep.sum()),
        )

    @property
    def num_rows(self) -> int:
        """Rows in the plan."""
        return len(self.row_offsets) - 1

    def row_documents(self, row: int) -> np.ndarray:
        """Task indices of the conversations in ``row``, in row order."""
        return self.doc_order[self.row_offsets[row] : self.row_offsets[row + 1]]

    def render_rows(self, rows: Sequence[int] | np.ndarray) -> PackedBatch:
        """Render and lay out the given rows (one tokenizer call for all their conversations)."""
        rows = [int(r) for r in rows]
        for r in rows:
            if not 0 <= r < self.num_rows:
                raise IndexError(f"row {r} out of range for a plan of {self.num_rows} rows")
        spans = [(int(self.row_offsets[r]), int(self.row_offsets[r + 1])) for r in rows]
        positions = [p for a, b in spans for p in range(a, b)]
        docs = self.renderer.render_batch([self.task[int(self.doc_order[p])] for p in positions])
        by_position = {}
        for p, doc in zip(positions, docs):
            kept = doc.truncate(self.max_len)
            if len(kept.ids) != self.doc_lengths[p]:
                raise RenderError(
                    f"conversation {self.doc_order[p]} rendered to {len(kept.ids)} tokens, planned "
                    f"{self.doc_lengths[p]}: the task or renderer is not deterministic"
                )
            by_position[p] = kept
        return assemble(
            [[by_position[p] for p in range(a, b)] for a, b in spans], self.max_len, self.renderer.pad_id
        )

    def row_order(self, epoch: int = 0, *, shuffle: bool = False, seed: int = 0) -> np.ndarray:
        """The order rows are read in during ``epoch`` (plan order unless ``shuffle``)."""
        if not shuffle:
            return np.arange(self.num_rows, dtype=np.int64)
        return np.random.default_rng([seed, epoch]).permutation(self.num_rows).astype(np.int64)

    def num_batches(self, batch_size: int, *, drop_last: bool = False) -> int:
        """Batches per epoch."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        full, rest = divmod(self.num_rows, batch_size)
        return full + (1 if rest and not drop_last else 0)

    def batch_rows(self, batch: int, batch_size: int, order: np.ndarray) -> np.ndarray:
        """The rows of batch number ``batch`` in ``order``."""
        return order[batch * batch_size : (batch + 1) * batch_size]

    def batches(
        self,
        batch_size: int,
        *,
        epoch: int = 0,
        start: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> Iterator[PackedBatch]:
        """The batches of ``epoch`` from batch ``start`` on, as numpy arrays (no torch needed)."""
        order = self.row_order(epoch, shuffle=shuffle, seed=seed)
        for batch in range(start, self.num_batches(batch_size, drop_last=drop_last)):
            yield self.render_rows(self.batch_rows(batch, batch_size, order))

    def fingerprint(self) -> str:
        """A short hash of the plan's layout: equal plans give equal batches."""
        digest = hashlib.sha256()
        for array in (self.doc_order, self.row_offsets, self.doc_lengths):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(f"{self.max_len}/{self.rank}/{self.world_size}".encode())
        return digest.hexdigest()[:16]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the layout (indices only) to an ``.npz`` file."""
        np.savez_compressed(
            path,
            doc_order=self.doc_order,
            row_offsets=self.row_offsets,
            doc_lengths=self.doc_lengths,
            dropped=self.dropped,
            meta=np.array(
                [self.max_len, self.rank, self.world_size, self.buffer_size, len(self.task)], dtype=np.int64
            ),
            report=np.array(list(self.report.as_dict().values())[:-1], dtype=np.int64),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], task: Any, renderer: Renderer) -> PackingPlan:
        """A plan saved by ``save``, over the same task and renderer (the task's length is checked)."""
        with np.load(path) as data:
            max_len, rank, world_size, buffer_size, size = (int(x) for x in data["meta"])
            if size != len(task):
                raise ValueError(f"{path}: plan was made for a task of {size} rows, this one has {len(task)}")
            plan = cls.__new__(cls)
            plan.task, plan.renderer, plan.max_len = task, renderer, max_len
            plan.rank, plan.world_size, plan.buffer_size = rank, world_size, buffer_size
            plan.indices = np.arange(rank, len(task), world_size, dtype=np.int64)
            plan.doc_order, plan.row_offsets = data["doc_order"], data["row_offsets"]
            plan.doc_lengths, plan.dropped = data["doc_lengths"], data["dropped"]
            plan.report = PackReport(*(int(x) for x in data["report"]))
        return plan
