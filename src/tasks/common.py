"""nanochat's ``tasks.common``: the base class, mixtures, ``render_mc`` and the Hub dataset loader.

``load_hub_dataset(repo_id, subset, split)`` and ``HubDataset`` behave as nanochat's (rows as
dicts in the Hub's order, ``shuffle(seed)`` a ``numpy.random.default_rng(seed)`` permutation of
them), so a task written against nanochat's loader runs unchanged::

    self.ds = load_hub_dataset("openai/gsm8k", "main", split="test").shuffle(seed=42)

The files come from chattasks' loader: ``data_dir=`` or ``$CHATTASKS_DATA_DIR`` (a local folder
in the Hub's layout), else the Hugging Face Hub, converted once to a memory-mapped Arrow file.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from chattasks.data import Rows, load_rows
from chattasks.render import render_mc
from chattasks.task import Task, TaskMixture, TaskSequence

__all__ = ["HubDataset", "Task", "TaskMixture", "TaskSequence", "load_hub_dataset", "render_mc"]


class HubDataset(Rows):
    """The rows of an Arrow table, read one at a time as dicts, in ``permutation`` order if given.

    ``len`` counts the table's rows; ``ds[i]`` is row ``permutation[i]`` (row ``i`` without one).
    """

    def __init__(
        self, table: pa.Table, permutation: np.ndarray | None = None, *, source: str = "", where: str = ""
    ) -> None:
        super().__init__(table, permutation, source=source, where=where)

    @property
    def permutation(self) -> np.ndarray | None:
        """The row order, or None for the table's own order."""
        return self.order

    def shuffle(self, seed: int) -> HubDataset:
        """The same table in ``numpy.random.default_rng(seed).permutation`` order.

        As in nanochat (and as ``datasets.Dataset.shuffle(seed=seed)`` on an unshuffled
        dataset): the permutation is of the table's rows, replacing any earlier one.
        """
        order = np.random.default_rng(seed).permutation(len(self))
        return HubDataset(self.table, order, source=self.source, where=self.where)


def load_hub_dataset(
    repo_id: str,
    subset: str = "default",
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> HubDataset:
    """One split of a Hub dataset, rows in the Hub's order (call ``.shuffle(seed)`` to shuffle).

    Read from ``data_dir`` or ``$CHATTASKS_DATA_DIR`` when set, else from the Hugging Face Hub;
    ``DatasetNotFound`` names what was asked and where it looked.
    """
    rows = load_rows(repo_id, subset, split, data_dir=data_dir, shuffle_seed=None)
    return HubDataset(rows.table, source=rows.source, where=rows.where)
