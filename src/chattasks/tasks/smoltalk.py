"""SmolTalk: general chat conversations for fine-tuning (a training task: no grader).

Dataset: ``HuggingFaceTB/smol-smoltalk`` -- https://huggingface.co/datasets/HuggingFaceTB/smol-smoltalk --
config ``default``, splits ``train`` (460K rows) and ``test`` (24K rows), the variant of SmolTalk
suited to small models. Rows are read in nanochat's order (the Hub's order shuffled with seed 42).
A raw row (an illustration in the real schema; the local mirror only has a stand-in)::

    {"messages": [{"role": "user", "content": "Hi! Can you help me plan a picnic?"},
                  {"role": "assistant", "content": "Of course! How many people ..."}],
     "source": "everyday-conversations"}

becomes its messages, untouched (an optional system message first, then user and assistant
alternating, at least one of each, every content a string)::

    {"messages": [{"role": "user", "content": "Hi! Can you help me plan a picnic?"},
                  {"role": "assistant", "content": "Of course! How many people ..."}]}

A row is checked when it is read (checking all 460K rows up front would make construction slow):
a malformed one raises ``InvalidConversation`` naming the split, the row and its Hub row.
``validate_all()`` checks every row at once and reports all the faulty ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from chattasks.conversation import conversation_problems
from chattasks.data import load_rows
from chattasks.errors import InvalidConversation
from chattasks.task import Conversation, Task

DATASET = "HuggingFaceTB/smol-smoltalk"
CONFIG = "default"
SPLITS = ("train", "test")


def message_problems(messages: Any) -> list[str]:
    """Every way a SmolTalk row's ``messages`` breaks the schema (empty when it is valid)."""
    problems = conversation_problems(messages, min_messages=2, allow_parts=False)
    if not problems:
        turns = len(messages) - (messages[0]["role"] == "system")
        if turns < 2:
            problems.append(f"expected a user and an assistant message after the system message, got {turns}")
    return problems


class SmolTalk(Task):
    """smol-smoltalk conversations (``split`` train|test), in nanochat's shuffled order."""

    def __init__(self, split: str, *, data_dir: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in SPLITS:
            raise ValueError(f"SmolTalk split must be one of {', '.join(SPLITS)}; got {split!r}")
        self.split = split
        self.rows = load_rows(DATASET, CONFIG, split, data_dir=data_dir)
        self._messages = self.rows.table.column("messages")

    @property
    def eval_type(self) -> str:
        """'generative': free-text chat (SmolTalk is used for training only)."""
        return "generative"

    def num_examples(self) -> int:
        return len(self.rows)

    def _where(self, index: int, hub_row: int) -> str:
        return f"{DATASET} [{self.split}] row {index} (Hub row {hub_row})"

    def _hub_rows(self, indices: range) -> np.ndarray:
        positions = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        return positions if self.rows.order is None else self.rows.order[positions]

    def _conversation(self, index: int, hub_row: int, messages: Any) -> Conversation:
        problems = message_problems(messages)
        if problems:
            raise InvalidConversation(f"{self._where(index, hub_row)}: {'; '.join(problems)}", problems)
        return {"messages": messages}

    def get_example(self, index: int) -> Conversation:
        """The conversation at row ``index``; InvalidConversation when the row is malformed."""
        index = range(len(self.rows))[index]  # IndexError when out of range
        hub_row = index if self.rows.order is None else int(self.rows.order[index])
        return self._conversation(index, hub_row, self._messages[hub_row].as_py())

    def __iter__(self) -> Iterator[Conversation]:
        """The view's conversations, converted a batch at a time (faster than a get_example per row)."""
        rows = self.physical_rows()
        for start in range(0, len(rows), 4096):
            indices = rows[start : start + 4096]
            hub_rows = self._hub_rows(indices)
            batch = self._messages.take(pa.array(hub_rows)).to_pylist()
            for index, hub_row, messages in zip(indices, hub_rows.tolist(), batch):
                yield self._conversation(index, hub_row, messages)

    def conversation_texts(self) -> Iterator[str]:
        """Each conversation's message contents joined by newlines, in the view's order, read in bulk.

        Much faster than iterating when only the text matters (``chattasks contamination``); rows are
        not checked here, except that a row without messages or with a null content raises as
        ``task[i]`` does (``validate_all`` checks everything).
        """
        import pyarrow.compute as pc

        rows = self.physical_rows()
        for start in range(0, len(rows), 1024):
            indices = rows[start : start + 1024]
            taken = self._messages.take(pa.array(self._hub_rows(indices))).combine_chunks()
            counts = pc.list_value_length(taken)
            offsets = np.concatenate([[0], np.cumsum(counts.fill_null(0).to_numpy())]).astype(np.int32)
            contents = pc.list_flatten(taken).field("content")
            joined = pc.binary_join(pa.ListArray.from_arrays(offsets, contents, mask=counts.is_null()), "\n")
            for index, text in zip(indices, joined.to_pylist()):
                if text is None:  # raises InvalidConversation naming the row
                    text = "\n".join(message["content"] for message in self.get_example(index)["messages"])
                yield text

    def validate_all(self, max_errors: int | None = 20) -> int:
        """Check every row of the split (whatever the view); return their number, or raise listing the faulty ones.

        Rows are checked in the Hub's order (no shuffled copy is made); at most ``max_errors`` faulty
        rows are described (None: all) and the rest are counted.
        """
        order = self.rows.order
        errors: list[str] = []
        faulty = hub_row = 0
        for batch in self.rows.table.select(["messages"]).to_batches(max_chunksize=4096):
            for messages in batch.column(0).to_pylist():
                problems = message_problems(messages)
                if problems:
                    faulty += 1
                    if max_errors is None or len(errors) < max_errors:
                        index = hub_row if order is None else int(np.flatnonzero(order == hub_row)[0])
                        errors.append(f"{self._where(index, hub_row)}: {'; '.join(problems)}")
                hub_row += 1
        if errors:
            more = f"\n(and {faulty - len(errors)} more rows)" if faulty > len(errors) else ""
            raise InvalidConversation("\n".join(errors) + more, errors)
        return hub_row
