"""Generation for the ``hf`` backend: continuous batching, one slot per reply being written.

``SlotDecoder`` keeps up to ``slots`` replies in one batch and runs one decode step for all of
them at a time; a reply that ends (a stop token, its token limit) leaves the batch at once and
the next request takes its slot, so no reply waits for a longer batch-mate.

- **Prefill**: each prompt is computed alone, unpadded, with only its last position's logits; the
  samples of one prompt (``num_samples > 1``) share that computation.
- **Decode**: the batch's KV cache is left padded with an attention mask, every row at its own
  position ids, so padding moves no token. A new row is merged in by padding the shorter side;
  columns that only padding uses any more are cut off when rows leave.
- **Picking**: greedy is the argmax of the row's logits; sampling (temperature, then top-k, then a
  draw from the softmax) draws from the row's own generator, seeded by (seed, sample number,
  prompt tokens), so a sample never depends on which requests share its batch.
- **Forcing** (``TokenHook``): after each token the model picks, a hook may name tokens to append
  to that reply; they are fed in as inputs one per step, never sampled, while the other rows keep
  generating. This is where a tool call's output goes (nanochat's calculator).

Exactness: a row computes the same numbers it would alone, up to float rounding (the matrix
products run with a different number of rows, the attention over padded keys), so in float32
greedy replies match batch-size-1 replies except where two candidate tokens tie within ~1e-5.

A model whose KV cache is not a plain per-layer dynamic cache (sliding-window or linear
attention layers) cannot have rows merged into a running batch: it runs in waves instead, a
batch of up to ``slots`` prompts left padded together, rows leaving as they end, the next wave
starting when the batch is empty.
"""

from __future__ import annotations

import copy
import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chattasks.errors import BackendError
from chattasks.eval.backends.hf_forward import ModelCall


class TokenHook(Protocol):
    """Called after every token the model picks for a reply, unless that token ends the reply (a
    stop token, the token limit); never after forced tokens.

    ``prompt`` and ``sample`` say which reply; ``reply`` is a copy of its tokens so far, the new
    token last. The tokens returned (None or empty: none) are appended to that reply next, as
    inputs, one per decode step; they count toward the reply's token limit, and a stop token
    among them ends the reply.
    """

    def __call__(self, prompt: int, sample: int, reply: Sequence[int]) -> Sequence[int] | None: ...


@dataclass(frozen=True)
class Request:
    """One reply to write: its prompt's tokens, its token limit and its sampling seed (None: greedy)."""

    prompt: int
    sample: int
    ids: tuple[int, ...]
    limit: int
    seed: int | None


@dataclass(frozen=True)
class Decoding:
    """How tokens are picked: greedy at temperature 0, else sampled."""

    temperature: float
    top_k: int | None
    stop_ids: frozenset[int]


@dataclass
class _Row:
    index: int  # the request's place in the list being run
    request: Request
    generator: Any
    reply: list[int] = field(default_factory=list)
    forced: deque[int] = field(default_factory=deque)

    @property
    def position(self) -> int:
        """Position of the reply's last token, the next input (it is not in the cache yet)."""
        return len(self.request.ids) + len(self.reply) - 1


def sample_seed(seed: int, sample: int, prompt: Sequence[int]) -> int:
    """The generator seed of one sample: a hash of (seed, sample number, prompt tokens)."""
    digest = hashlib.sha256(f"{seed}:{sample}:{','.join(map(str, prompt))}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def mergeable(cache: Any, config: Any) -> bool:
    """Whether rows can be merged into this model's KV cache: full attention only (no sliding window)
    and every cache layer a plain dynamic one, its keys and values a tensor each."""
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    if sliding or "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        return False
    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


class SlotDecoder:
    """Writes the replies of a list of requests with continuous batching (see the module doc)."""

    def __init__(
        self,
        call: ModelCall,
        decoding: Decoding,
        slots: int,
        *,
        continuous: bool = True,
        hook: TokenHook | None = None,
    ) -> None:
        self.call, self.torch = call, call.torch
        self.decoding, self.slots, self.continuous, self.hook = decoding, slots, continuous, hook
        self.sampled = 0  # tokens the model picked (forced tokens not counted)
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: Any = None  # (rows, cached columns): 1 where a row has a token
        self._memo: tuple[tuple[int, ...], Any, Any] | None = None  # the last prompt prefilled alone

    def run(self, requests: Sequence[Request]) -> list[list[int]]:
        """The reply tokens of each request, in order; a reply ends with its stop token if it met one."""
        replies: list[list[int]] = [[] for _ in requests]
        queue = deque(range(len(requests)))
        with self.torch.inference_mode():
            while queue or self._rows:
                free = self.slots - len(self._rows)
                if queue and free > 0 and (self.continuous or not self._rows):
                    self._admit([queue.popleft() for _ in range(min(free, len(queue)))], requests)
                else:
                    self._step()
                for row in self._finished():
                    replies[row.index] = row.reply
        return replies

    # ----- admitting requests -----------------------------------------------------------------
    def _admit(self, indices: Sequence[int], everything: Sequence[Request]) -> None:
        """Prefill ``everything[i]`` for each index, pick its first token, and add it to the batch."""
        requests = [everything[i] for i in indices]
        if self.continuous:
            alone = [self._prefill_alone(request) for request in requests]
            logits = self.torch.cat([last for _, last in alone])
            self._merge([cache for cache, _ in alone])
        else:
            ids, mask, positions = self.call.left_padded([r.ids for r in requests])
            logits, self._cache = self.call.logits(ids, mask, positions, keep=1, use_cache=True)
            logits, self._mask = logits[:, -1, :], mask
        rows = [_Row(i, r, self._generator(r)) for i, r in zip(indices, requests)]
        self._rows.extend(rows)
        self._pick(rows, logits)

    def _generator(self, request: Request) -> Any:
        if request.seed is None:
            return None
        return self.torch.Generator(device=self.call.device).manual_seed(request.seed)

    def _prefill_alone(self, request: Request) -> tuple[Any, Any]:
        """(KV cache, last logits) of one prompt computed unpadded; consecutive samples share it."""
        if self._memo is not None and self._memo[0] == request.ids:
            return self._memo[1], self._memo[2]
        torch, device = self.torch, self.call.device
        ids = torch.tensor([request.ids], dtype=torch.long, device=device)
        mask = torch.ones_like(ids)
        positions = torch.arange(ids.shape[1], device=device)[None, :]
        logits, cache = self.call.logits(ids, mask, positions, keep=1, use_cache=True)
        self._memo = (request.ids, cache, logits[:, -1, :])
        return cache, logits[:, -1, :]

    def _merge(self, caches: Sequence[Any]) -> None:
        """Add one-row caches to the batch: every row left padded to the widest, one copy per layer."""
        torch, F = self.torch, self.torch.nn.functional
        parts = ([] if self._cache is None else [self._cache]) + list(caches)
        widths = [part.layers[0].keys.shape[-2] for part in parts]
        width = max(widths)
        merged: Any = _empty_copy(caches[0]) if self._cache is None else self._cache
        for index, layer in enumerate(merged.layers):
            for name in ("keys", "values"):
                pieces = [getattr(part.layers[index], name) for part in parts]
                padded = [F.pad(t, (0, 0, width - w, 0)) if w < width else t for t, w in zip(pieces, widths)]
                setattr(layer, name, torch.cat(padded, dim=0))
        masks = [] if self._mask is None else [F.pad(self._mask, (width - widths[0], 0))]
        for w in widths[len(masks) :]:
            masks.append(F.pad(torch.ones((1, w), dtype=torch.long, device=self.call.device), (width - w, 0)))
        self._cache, self._mask = merged, torch.cat(masks, dim=0)

    # ----- decoding ---------------------------------------------------------------------------
    def _step(self) -> None:
        """One decode step: every row's pending token in, one new token per row out."""
        torch, device = self.torch, self.call.device
        ids = torch.tensor([[row.reply[-1]] for row in self._rows], dtype=torch.long, device=device)
        positions = torch.tensor([[row.position] for row in self._rows], dtype=torch.long, device=device)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self._rows), 1))], dim=1)
        logits, _ = self.call.logits(ids, self._mask, positions, keep=1, cache=self._cache)
        self._pick(self._rows, logits[:, -1, :])

    def _pick(self, rows: Sequence[_Row], logits: Any) -> None:
        """Append each row's next token: a forced one, else the argmax or a draw from its generator."""
        greedy = logits.argmax(dim=-1).tolist()
        for k, row in enumerate(rows):
            if row.forced:
                row.reply.append(row.forced.popleft())
                continue
            token = greedy[k] if row.generator is None else self._draw(logits[k], row.generator)
            row.reply.append(token)
            self.sampled += 1
            if self.hook is not None and not self._done(row):
                request = row.request
                row.forced.extend(self.hook(request.prompt, request.sample, list(row.reply)) or ())

    def _draw(self, logits: Any, generator: Any) -> int:
        torch, decoding = self.torch, self.decoding
        scaled = logits.float() / decoding.temperature
        if decoding.top_k is not None and decoding.top_k < scaled.shape[-1]:
            cutoff = torch.topk(scaled, decoding.top_k).values[-1]
            scaled = scaled.masked_fill(scaled < cutoff, float("-inf"))
        return int(torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator))

    def _done(self, row: _Row) -> bool:
        return row.reply[-1] in self.decoding.stop_ids or len(row.reply) >= row.request.limit

    def _finished(self) -> list[_Row]:
        """Take the rows that ended out of the batch (and columns no row uses any more)."""
        done = [row for row in self._rows if self._done(row)]
        if not done:
            return []
        keep = [k for k, row in enumerate(self._rows) if not self._done(row)]
        self._rows = [self._rows[k] for k in keep]
        if not keep:
            self._cache = self._mask = None
            return done
        index = self.torch.tensor(keep, device=self.call.device)
        self._cache.batch_select_indices(index)
        self._mask = self._mask[index]
        if self.continuous:
            unused = int((self._mask.sum(dim=0) == 0).cumprod(dim=0).sum())
            if unused:
                self._mask = self._mask[:, unused:]
                for layer in self._cache.layers:
                    layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]
        return done


def _empty_copy(cache: Any) -> Any:
    """A cache object like ``cache`` with layers of its own, whose tensors the caller replaces."""
    fresh = copy.copy(cache)
    fresh.layers = [copy.copy(layer) for layer in cache.layers]
    return fresh


def requests_for(
    prompts: Sequence[Sequence[int]], num_samples: int, max_new_tokens: int, max_length: int, seed: int | None
) -> list[Request]:
    """One request per (prompt, sample); ``seed`` None means greedy. BackendError when a prompt leaves no room."""
    out = []
    for p, ids in enumerate(prompts):
        room = max_length - len(ids)
        if room < 1:
            raise BackendError(
                f"no room to generate: a prompt of {len(ids)} tokens fills max_length={max_length}"
            )
        for s in range(num_samples):
            sampled = None if seed is None else sample_seed(seed, s, ids)
            out.append(Request(p, s, tuple(ids), min(max_new_tokens, room), sampled))
    return out
