"""How the ``hf`` backend calls its model: forward passes, left padding, batches, the KV cache.

``ModelCall`` wraps the loaded model with what this transformers version wants: the KV cache is
passed and returned as ``cache`` from transformers 5.x on (``past_key_values`` before, now
deprecated), and only the last positions' logits are computed when the model takes
``logits_to_keep`` (``num_logits_to_keep`` in older versions).

Rows of different lengths are left padded with an attention mask and explicit position ids, so
padding moves no token: a padded row computes what it computes alone, up to float rounding.
``batches`` groups prompts by length for one-pass scoring.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

PADDING_SLACK = 0.1
MIN_BATCH_TOKENS = 256
"""Batching: a batch of at least MIN_BATCH_TOKENS real tokens is cut before padding exceeds
PADDING_SLACK of them (on CPU, throughput is flat from a few hundred tokens a batch on)."""


@dataclass(frozen=True)
class ModelCall:
    """A loaded causal LM and the keywords this transformers version calls it with."""

    torch: Any
    model: Any
    device: str
    pad_id: int
    keep_arg: str | None  # "logits_to_keep", "num_logits_to_keep" or None
    cache_arg: str  # "cache" (transformers 5.x) or "past_key_values"

    @classmethod
    def of(cls, torch: Any, model: Any, device: str, pad_id: int) -> ModelCall:
        """Read the keywords ``model.forward`` takes."""
        takes = inspect.signature(model.forward).parameters
        keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in takes), None)
        cache = "cache" if "cache" in takes else "past_key_values"
        return cls(torch, model, device, pad_id, keep, cache)

    def logits(
        self, ids: Any, mask: Any, positions: Any, keep: int, cache: Any = None, use_cache: bool = False
    ) -> tuple[Any, Any]:
        """(logits of the last ``keep`` positions, the KV cache or None); ``cache`` is extended in place."""
        kwargs: dict[str, Any] = {"attention_mask": mask, "position_ids": positions}
        use_cache = use_cache or cache is not None
        kwargs["use_cache"] = use_cache
        if cache is not None:
            kwargs[self.cache_arg] = cache
        if self.keep_arg is not None:
            kwargs[self.keep_arg] = keep
        with self.torch.inference_mode():
            out = self.model(input_ids=ids, **kwargs)
        return out.logits[:, -keep:, :], getattr(out, self.cache_arg) if use_cache else None

    def logprobs(self, ids: Any, mask: Any, positions: Any, keep: int, cache: Any = None) -> Any:
        """float32 log-probabilities of the last ``keep`` positions, shape (batch, keep, vocab)."""
        logits, _ = self.logits(ids, mask, positions, keep, cache)
        return self.torch.log_softmax(logits.float(), dim=-1)

    def left_padded(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        """Rows left padded into (ids, attention mask, position ids) tensors on the device."""
        torch = self.torch
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)


def batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches, longest first: at most ``batch_size`` rows, and a batch
    that already holds ``MIN_BATCH_TOKENS`` ends rather than pad more than ``PADDING_SLACK``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    real = 0
    for i in order:
        if batch:
            width = lengths[batch[0]]
            full = len(batch) == batch_size
            wasteful = real >= MIN_BATCH_TOKENS and width * (len(batch) + 1) > (1 + PADDING_SLACK) * (
                real + lengths[i]
            )
            if full or wasteful:
                yield batch
                batch, real = [], 0
        batch.append(i)
        real += lengths[i]
    if batch:
        yield batch
