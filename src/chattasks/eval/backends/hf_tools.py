"""A batched decoding loop that can write tool output into a row while the other rows go on.

``generate_with_tools(model, rows, ...)`` decodes a batch of prompts (token ids) with a
transformers causal LM one token per step over its KV cache: left padded, with an attention
mask and per-row position ids, so rows of any length share the batch. At each step every row
takes the next token chosen from its logits (``processors`` -- transformers logits processors,
``(input_ids, scores) -> scores`` -- then argmax; greedy without any), unless its hook queued
tokens to force: a forced token replaces the chosen one, goes into the sequence and the KV cache
like any other, and is marked ``forced``. Every token a row receives is given to its hook
(``RowTools.push``), whose answer is queued. A row ends at a stop token (not kept, finish reason
``stop``) or after ``max_new_tokens`` tokens, forced ones included as in nanochat's engine
(``length``).

This is the loop the ``hf`` backend runs when the calculator is offered to a model that writes
nanochat's tool tokens; a continuous-batching loop can take over by calling ``push`` the same way.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chattasks.tools.forcing import RowTools

Processor = Callable[[Any, Any], Any]
"""A transformers logits processor: ``(input_ids (B, T), scores (B, V)) -> scores``."""


@dataclass
class GeneratedRow:
    """What one row generated after its prompt."""

    tokens: list[int] = field(default_factory=list)
    """The tokens, sampled and forced, the stop token left out."""
    forced: list[bool] = field(default_factory=list)
    """For each token, whether it was forced rather than chosen from the logits."""
    finish_reason: str = "length"
    """``stop`` (a stop token) or ``length`` (``max_new_tokens`` reached)."""


def generate_with_tools(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    hooks: Sequence[RowTools | None] | None = None,
    processors: Sequence[Processor] = (),
    limits: Sequence[int] | None = None,
) -> list[GeneratedRow]:
    """Decode every row of ``rows`` (see the module docstring); one ``GeneratedRow`` per row.

    ``limits``: a smaller ``max_new_tokens`` for each row (a tool conversation's remaining budget).
    """
    import torch

    if not rows or any(len(row) == 0 for row in rows):
        raise ValueError("generate_with_tools needs at least one row, and no empty row")
    if hooks is not None and len(hooks) != len(rows):
        raise ValueError(f"got {len(hooks)} hooks for {len(rows)} rows")
    room = (
        [min(max_new_tokens, limit) for limit in limits]
        if limits is not None
        else [max_new_tokens] * len(rows)
    )
    max_new_tokens = max(room)
    device = next(model.parameters()).device
    width = max(len(row) for row in rows)
    sequences = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        sequences[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        mask[i, width - len(row) :] = 1
    sequences, mask = sequences.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    accepted = inspect.signature(model.forward).parameters
    keep = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
    cache_arg = "cache" if "cache" in accepted else "past_key_values"  # transformers 5.x renamed it
    stops = set(int(i) for i in stop_ids)
    out = [GeneratedRow() for _ in rows]
    queues: list[deque[int]] = [deque() for _ in rows]
    done = [limit <= 0 for limit in room]
    with torch.inference_mode():
        result = model(
            input_ids=sequences, attention_mask=mask, position_ids=positions, use_cache=True, **keep
        )
        past, logits = _cache_of(result), result.logits[:, -1, :]
        last = positions[:, -1:]
        for step_number in range(max_new_tokens):
            scores = logits.float()
            for processor in processors:
                scores = processor(sequences, scores)
            chosen = scores.argmax(dim=-1).tolist()
            column = []
            for i, generated in enumerate(out):
                if done[i]:
                    column.append(pad_id)
                    continue
                forced = bool(queues[i])
                token = queues[i].popleft() if forced else int(chosen[i])
                column.append(token)
                if token in stops and not forced:
                    done[i], generated.finish_reason = True, "stop"
                    continue
                generated.tokens.append(token)
                generated.forced.append(forced)
                hook = hooks[i] if hooks is not None else None
                if hook is not None:
                    queues[i].extend(hook.push(token))
                if len(generated.tokens) >= room[i]:
                    done[i] = True  # finish reason stays "length"
            if all(done) or step_number == max_new_tokens - 1:
                break
            step = torch.tensor(column, dtype=torch.long, device=device)[:, None]
            alive = torch.tensor([0 if d else 1 for d in done], dtype=torch.long, device=device)[:, None]
            sequences = torch.cat([sequences, step], dim=1)
            mask = torch.cat([mask, alive], dim=1)
            last = last + 1
            result = model(
                input_ids=step, attention_mask=mask, position_ids=last, use_cache=True, **{cache_arg: past}
            )
            past, logits = _cache_of(result), result.logits[:, -1, :]
    return out


def _cache_of(result: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in transformers 5, ``past_key_values`` before)."""
    cache = getattr(result, "cache", None)
    return cache if cache is not None else result.past_key_values
