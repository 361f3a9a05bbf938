"""Token accounting of a mixture, per task: conversations, tokens, trained tokens and their share.

Each task's rows are rendered once, however often the mixture repeats them; a task used for a
partial pass is measured only on the rows the mixture takes. With ``max_len``, tokens are counted
after truncation, and truncated and dropped (no trained token left) conversations are counted too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chattasks.sft.measure import measure
from chattasks.sft.renderer import Renderer
from chattasks.sft.spec import Mixture

PROGRESS_THRESHOLD = 5_000  # conversations to measure above which the CLI shows a progress bar


@dataclass
class TaskStats:
    """Counts for one task of a mixture (repeats included) or for the whole mixture."""

    label: str
    conversations: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    truncated: int = 0
    dropped: int = 0
    share: float = 0.0  # of the mixture's trained tokens

    @property
    def trained_fraction(self) -> float:
        """Share of this task's tokens that are trained."""
        return self.trained_tokens / self.tokens if self.tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counts as a plain dict (plus ``trained_fraction``)."""
        return {**asdict(self), "trained_fraction": self.trained_fraction}


@dataclass
class MixtureStats:
    """Per-task rows and their total."""

    tasks: list[TaskStats]
    total: TaskStats
    max_len: int | None

    def as_dict(self) -> dict[str, Any]:
        """Everything as plain data (for ``--json``)."""
        return {
            "max_len": self.max_len,
            "tasks": [task.as_dict() for task in self.tasks],
            "total": self.total.as_dict(),
        }


def rows_to_measure(mixture: Mixture) -> int:
    """How many conversations ``mixture_stats`` renders (each distinct row once)."""
    return sum(len(e.task) if e.passes[0] else e.passes[1] for e in mixture.entries)


def mixture_stats(
    mixture: Mixture,
    renderer: Renderer,
    *,
    max_len: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> MixtureStats:
    """Count conversations, tokens and trained tokens per task of ``mixture`` (see the module docstring)."""
    rows = []
    for entry in mixture.entries:
        full, rest = entry.passes
        view = entry.task if full else entry.task[:rest]
        m = measure(view, renderer, max_len=max_len, progress=progress)
        lengths = m.kept_lengths.astype(np.int64)
        trained = m.kept_trained.astype(np.int64)
        truncated = (m.lengths > max_len) if max_len is not None else np.zeros(len(m), dtype=bool)
        dropped = trained == 0
        weights = np.full(len(m), max(full, 1), dtype=np.int64)  # how often the mixture holds each row
        if full and rest:
            weights[:rest] += 1
        stats = TaskStats(
            entry.spec.label,
            conversations=int(weights.sum()),
            tokens=int((lengths * weights).sum()),
            trained_tokens=int((trained * weights).sum()),
            truncated=int(weights[truncated].sum()),
            dropped=int(weights[dropped].sum()),
        )
        rows.append(stats)
    total = TaskStats(
        "total",
        conversations=sum(r.conversations for r in rows),
        tokens=sum(r.tokens for r in rows),
        trained_tokens=sum(r.trained_tokens for r in rows),
        truncated=sum(r.truncated for r in rows),
        dropped=sum(r.dropped for r in rows),
        share=1.0 if rows else 0.0,
    )
    for r in rows:
        r.share = r.trained_tokens / total.trained_tokens if total.trained_tokens else 0.0
    return MixtureStats(rows, total, max_len)
