"""Token accounting: render every conversation once and keep only its length and trained-token counts.

``measure`` is the pass both ``stats`` and ``PackingPlan`` stand on: it renders conversations in
batches (the tokenizer encodes a batch in parallel) and returns compact int32 arrays, so a mixture
of a million conversations costs a few megabytes, never its token ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from chattasks.sft.renderer import Conversation, Renderer


@dataclass(frozen=True)
class Measurement:
    """Per conversation: its rendered length, trained tokens, and trained tokens within ``max_len``."""

    lengths: np.ndarray
    trained: np.ndarray
    kept_trained: np.ndarray
    max_len: int | None

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def kept_lengths(self) -> np.ndarray:
        """Lengths after truncation to ``max_len``."""
        return self.lengths if self.max_len is None else np.minimum(self.lengths, self.max_len)


def _chunks(items: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def measure(
    task: Any,
    renderer: Renderer,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    max_len: int | None = None,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> Measurement:
    """Measure rows ``indices`` of ``task`` (default: every row, in order) rendered by ``renderer``.

    ``progress`` is called with the number of conversations done after each batch.
    """
    if indices is None:
        total = len(task)
        conversations: Iterable[Conversation] = iter(task)
    else:
        total = len(indices)
        conversations = (task[int(i)] for i in indices)
    lengths = np.zeros(total, dtype=np.int32)
    trained = np.zeros(total, dtype=np.int32)
    kept = np.zeros(total, dtype=np.int32)
    at = 0
    for chunk in _chunks(conversations, batch_size):
        for doc in renderer.render_batch(chunk):
            lengths[at] = len(doc.ids)
            trained[at] = np.count_nonzero(doc.mask)
            kept[at] = trained[at] if max_len is None else np.count_nonzero(doc.mask[:max_len])
            at += 1
        if progress is not None:
            progress(len(chunk))
    if at != total:
        raise ValueError(f"task yielded {at} conversations, expected {total}")
    return Measurement(lengths, trained, kept, max_len)
