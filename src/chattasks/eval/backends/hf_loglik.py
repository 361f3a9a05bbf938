"""Log-likelihood scoring for the ``hf`` backend: one row per choice, or one packed row per question.

A question is ``(context ids, [continuation ids, ...])`` as ``HFBackend.encode_pair`` splits it
(lm-eval's tokenisation). Both functions return, per question, ``(summed log-probability, token
count)`` of each continuation.

- ``loglik_plain``: the reference, as lm-eval runs it: one row per (context, continuation) pair.
- ``loglik_packed``: one row per question: its context once, then every continuation but its
  last token, with a 4D attention mask that lets a continuation see the context and itself only,
  and position ids restarting after the context for each continuation. The shared context is
  computed once, and a one-token continuation costs nothing beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chattasks.eval.backends.hf_forward import ModelCall, batches

Question = tuple[list[int], list[list[int]]]
Scores = list[list[tuple[float, int]]]


def loglik_plain(call: ModelCall, questions: Sequence[Question], max_length: int, batch_size: int) -> Scores:
    """Reference scoring: one left-padded row per (context, continuation) pair."""
    pairs = [(q, j) for q, (_, conts) in enumerate(questions) for j in range(len(conts))]
    rows = [(questions[q][0] + questions[q][1][j])[-(max_length + 1) :][:-1] for q, j in pairs]
    results: Scores = [[(0.0, 0)] * len(conts) for _, conts in questions]
    for batch in batches([len(r) for r in rows], batch_size):
        targets = [questions[pairs[i][0]][1][pairs[i][1]] for i in batch]
        keep = max(len(t) for t in targets)
        logprobs = call.logprobs(*call.left_padded([rows[i] for i in batch]), keep=keep)
        for k, (i, target) in enumerate(zip(batch, targets)):
            picked = logprobs[k, keep - len(target) :, :].gather(
                -1, call.torch.tensor(target, device=logprobs.device)[:, None]
            )
            q, j = pairs[i]
            results[q][j] = (float(picked.sum()), len(target))
    return results


def loglik_packed(call: ModelCall, questions: Sequence[Question], batch_size: int, dtype: str) -> Scores:
    """One row per question: context, then each continuation minus its last token (module doc).

    Rows are left padded; the kept logits are the last ``longest tail + 1`` positions.
    """
    results: Scores = [[] for _ in questions]
    tails = [sum(len(c) - 1 for c in conts) for _, conts in questions]
    lengths = [len(ctx) + tail for (ctx, _), tail in zip(questions, tails)]
    for batch in batches(lengths, batch_size):
        ids, segment, positions = _packed_rows(call, [questions[q] for q in batch])
        keep = max(tails[q] for q in batch) + 1
        mask = packed_mask(call.torch, segment, dtype).to(call.device)
        logprobs = call.logprobs(ids.to(call.device), mask, positions.to(call.device), keep=keep)
        for k, q in enumerate(batch):
            last = keep - tails[q] - 1  # the kept column of the context's last token
            at = last + 1
            for cont in questions[q][1]:
                columns = [last, *range(at, at + len(cont) - 1)]
                picked = logprobs[k, columns, cont]
                results[q].append((float(picked.sum()), len(cont)))
                at += len(cont) - 1
    return results


def _packed_rows(call: ModelCall, questions: Sequence[Question]) -> tuple[Any, Any, Any]:
    """(ids, segment, position ids) of packed rows, left padded; segment: -1 pad, 0 context, j+1 choice j."""
    torch = call.torch
    lengths = [len(ctx) + sum(len(c) - 1 for c in conts) for ctx, conts in questions]
    width = max(lengths)
    ids = torch.full((len(questions), width), call.pad_id, dtype=torch.long)
    segment = torch.full((len(questions), width), -1, dtype=torch.long)
    positions = torch.zeros((len(questions), width), dtype=torch.long)
    for k, ((ctx, conts), length) in enumerate(zip(questions, lengths)):
        at = width - length
        ids[k, at : at + len(ctx)] = torch.tensor(ctx, dtype=torch.long)
        segment[k, at : at + len(ctx)] = 0
        positions[k, at : at + len(ctx)] = torch.arange(len(ctx))
        at += len(ctx)
        for j, cont in enumerate(conts):
            body = cont[:-1]
            ids[k, at : at + len(body)] = torch.tensor(body, dtype=torch.long)
            segment[k, at : at + len(body)] = j + 1
            positions[k, at : at + len(body)] = torch.arange(len(ctx), len(ctx) + len(body))
            at += len(body)
    return ids, segment, positions


def packed_mask(torch: Any, segment: Any, dtype: str) -> Any:
    """The additive 4D mask of packed rows: causal, context visible to all, choices blind to each other.

    Padding attends to itself only, so no row of the attention is empty (which would give NaN).
    """
    width = segment.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    key, query = segment[:, None, :], segment[:, :, None]
    allowed = causal & (key >= 0) & ((key == 0) | (key == query))
    allowed |= torch.eye(width, dtype=torch.bool)
    kind = getattr(torch, dtype)
    mask = torch.zeros(allowed.shape, dtype=kind).masked_fill(~allowed, torch.finfo(kind).min)
    return mask[:, None, :, :]
