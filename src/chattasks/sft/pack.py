"""Best-fit packing of rendered conversations into rows of ``max_len`` tokens, with exact accounting.

The algorithm is nanochat's SFT packer (``sft_data_generator_bos_bestfit``): keep a buffer of the
next ``buffer_size`` conversations (default 100); fill a row by taking, again and again, the
longest buffered conversation that still fits (the earliest of equals), refilling the buffer from
the stream before every pick; when none fits, pad the rest of the row and start a new one. Nothing
is cropped to fit a row: every conversation lands whole in exactly one row.

Before packing, each conversation is truncated to its first ``max_len`` tokens (so it fits an
empty row) and one left with no trained token is dropped; both are counted in ``PackReport``,
as are padding tokens. A row therefore always holds at least one trained token.

Each row carries ``input_ids``, ``loss_mask`` (1 = trained), ``position_ids`` (restarting at 0 for
every conversation, and for the padding) and ``document_ids`` (0, 1, ... per conversation in the
row, -1 on padding). Padding uses the renderer's ``pad_id`` (nanochat: ``<|bos|>``) with mask 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from chattasks.sft.renderer import RenderedConversation

T = TypeVar("T")
_LAST = 1 << 62  # larger than any insertion number


def best_fit(
    items: Iterable[T], max_len: int, *, length: Callable[[Any], int] = len, buffer_size: int = 100
) -> Iterator[list[T]]:
    """Group ``items`` (each of length <= max_len) into rows by nanochat's buffered best-fit; yield each row."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
    stream = iter(items)
    keys: list[tuple[int, int]] = []  # (length, insertion number), sorted
    held: dict[int, T] = {}
    counter = 0
    exhausted = False
    row: list[T] = []
    room = max_len
    while True:
        while not exhausted and len(keys) < buffer_size:
            try:
                item = next(stream)
            except StopIteration:
                exhausted = True
                break
            size = length(item)
            if not 0 < size <= max_len:
                raise ValueError(f"item {counter} has length {size}; expected 1..{max_len} (truncate first)")
            bisect.insort(keys, (size, counter))
            held[counter] = item
            counter += 1
        if not keys:
            if row:
                yield row
            return
        top = bisect.bisect_right(keys, (room, _LAST)) - 1
        if top < 0:  # nothing fits: the row is padded
            yield row
            row, room = [], max_len
            continue
        size = keys[top][0]
        first = bisect.bisect_left(keys, (size, -1))
        _, number = keys.pop(first)
        row.append(held.pop(number))
        room -= size
        if room == 0:
            yield row
            row, room = [], max_len


@dataclass
class PackReport:
    """What packing did: rows, tokens, trained tokens, padding, truncation and dropped conversations."""

    conversations: int = 0
    rows: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    padding_tokens: int = 0
    truncated_conversations: int = 0
    truncated_tokens: int = 0
    truncated_trained_tokens: int = 0
    dropped_untrained: int = 0
    packed_conversations: int = 0

    @property
    def padding_fraction(self) -> float:
        """Share of row slots holding padding."""
        total = self.tokens + self.padding_tokens
        return self.padding_tokens / total if total else 0.0

    def merge(self, other: PackReport) -> PackReport:
        """The sum of two reports (e.g. of two ranks)."""
        return PackReport(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, Any]:
        """The counts, plus the padding fraction, as a plain dict."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["padding_fraction"] = self.padding_fraction
        return out

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"{self.packed_conversations:,} conversations in {self.rows:,} rows; "
            f"{self.trained_tokens:,}/{self.tokens:,} tokens trained; padding {self.padding_fraction:.1%}; "
            f"truncated {self.truncated_conversations:,} ({self.truncated_tokens:,} tokens, "
            f"{self.truncated_trained_tokens:,} trained); dropped {self.dropped_untrained:,} with no trained token"
        )


@dataclass
class PackedBatch:
    """Rows of packed conversations: four int arrays of shape (rows, max_len)."""

    input_ids: np.ndarray
    loss_mask: np.ndarray
    position_ids: np.ndarray
    document_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def labels(self, ignore_index: int = -100) -> np.ndarray:
        """Hugging Face labels (unshifted): the token id where trained, ``ignore_index`` elsewhere."""
        return np.where(self.loss_mask.astype(bool), self.input_ids.astype(np.int64), ignore_index)

    def shifted(self, ignore_index: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """nanochat's (inputs, targets): ``inputs = ids[:, :-1]``, ``targets = ids[:, 1:]`` masked by ``mask[:, 1:]``."""
        return self.input_ids[:, :-1], self.labels(ignore_index)[:, 1:]


def assemble(rows: Sequence[Sequence[RenderedConversation]], max_len: int, pad_id: int) -> PackedBatch:
    """Lay out rows of conversations (each row's total <= max_len) as a PackedBatch, padding each row."""
    n = len(rows)
    input_ids = np.full((n, max_len), pad_id, dtype=np.int32)
    loss_mask = np.zeros((n, max_len), dtype=np.uint8)
    position_ids = np.zeros((n, max_len), dtype=np.int32)
    document_ids = np.full((n, max_len), -1, dtype=np.int32)
    ramp = np.arange(max_len, dtype=np.int32)
    for r, docs in enumerate(rows):
        at = 0
        for d, doc in enumerate(docs):
            size = len(doc.ids)
            if at + size > max_len:
                raise ValueError(f"row {r}: conversations total more than max_len={max_len} tokens")
            input_ids[r, at : at + size] = doc.ids
            loss_mask[r, at : at + size] = doc.mask
            position_ids[r, at : at + size] = ramp[:size]
            document_ids[r, at : at + size] = d
            at += size
        position_ids[r, at:] = ramp[: max_len - at]
    return PackedBatch(input_ids, loss_mask, position_ids, document_ids)


class Packer:
    """Stream rendered conversations into packed batches (truncate, drop untrained, best-fit), with a report."""

    def __init__(self, max_len: int, pad_id: int, *, buffer_size: int = 100) -> None:
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2, got {max_len}")
        self.max_len = max_len
        self.pad_id = pad_id
        self.buffer_size = buffer_size
        self.report = PackReport()

    def admit(self, doc: RenderedConversation) -> RenderedConversation | None:
        """Truncate ``doc`` to max_len and count it; None (counted as dropped) when no trained token is left."""
        report = self.report
        report.conversations += 1
        kept = doc.truncate(self.max_len)
        if kept is not doc:
            report.truncated_conversations += 1
            report.truncated_tokens += len(doc.ids) - len(kept.ids)
            report.truncated_trained_tokens += doc.num_trained - kept.num_trained
        trained = kept.num_trained
        if trained == 0:
            report.dropped_untrained += 1
            return None
        report.packed_conversations += 1
        report.tokens += len(kept.ids)
        report.trained_tokens += trained
        return kept

    def rows(self, docs: Iterable[RenderedConversation]) -> Iterator[list[RenderedConversation]]:
        """Rows of conversations, in best-fit order; padding is counted as each row is closed."""
        admitted = (kept for doc in docs if (kept := self.admit(doc)) is not None)
        for row in best_fit(admitted, self.max_len, buffer_size=self.buffer_size):
            self.report.rows += 1
            self.report.padding_tokens += self.max_len - sum(len(doc.ids) for doc in row)
            yield row

    def pack(self, docs: Iterable[RenderedConversation], batch_size: int) -> Iterator[PackedBatch]:
        """Packed batches of ``batch_size`` rows (the last may be smaller)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pending: list[list[RenderedConversation]] = []
        for row in self.rows(docs):
            pending.append(row)
            if len(pending) == batch_size:
                yield assemble(pending, self.max_len, self.pad_id)
                pending = []
        if pending:
            yield assemble(pending, self.max_len, self.pad_id)
