"""The ``hf`` backend: a transformers causal LM run in this process, on CPU or one GPU.

    >>> backend = HFBackend()  # the embedded SmolLM2-135M-Instruct (pip install 'chattasks[hf]')
    >>> backend.letter_scores([[{"role": "user", "content": "2+2? 4=A, 5=B"}]], [["A", "B"]])[0].scores
    {'A': -2.04..., 'B': -3.89...}  # log-probabilities of each letter opening the reply

``model`` is a local folder, a Hub id, or None for the embedded SmolLM2-135M-Instruct GGUF file,
which needs no network and whose dequantised copy is cached (``hf_model`` says where both live).
``gguf_file`` names a GGUF file inside the folder or repo (transformers dequantises it on load).
A local path, or ``HF_HUB_OFFLINE=1``, loads with ``local_files_only``. ``device`` and ``dtype``
default to ``auto`` (``hf_setup`` says what that picks: float32 on a CPU without AMX).

How each request is computed (``batch_size`` is the most rows a forward pass holds):

- ``letter_scores``: the chat template with the generation prompt; prompts sorted by length into
  left padded batches (cut early rather than pad a full pass by more than 10%; ``hf_forward``),
  one forward pass each keeping only the last position's logits; a letter's score is its
  log-probability over the whole vocabulary, and every letter must be one token. The prefix all
  prompts of a call share (the system prompt, the task's preamble) is computed once and reused
  from the KV cache.
- ``loglikelihoods``: tokenised as lm-eval's ``HFLM`` does (trailing context whitespace moves to
  the continuation; the pair is encoded whole and the context's tokens split off; the
  tokenizer's own special tokens; an empty context becomes the BOS, else EOS, token), so the
  numbers match lm-eval's; each question is one packed row (``hf_loglik``).
- ``generate``: continuous batching (``hf_generate``): up to ``batch_size`` replies decode
  together and a finished reply's slot takes the next prompt at once. Replies stop at the
  tokenizer's EOS, the generation config's EOS ids and the token the chat template closes a turn
  with; only the new text is returned, special tokens dropped. Greedy at temperature 0; otherwise
  each sample draws from its own generator seeded by (``config.seed``, sample number, prompt), so
  a sample does not depend on which other prompts share its batch, process or run. The model's
  shipped generation defaults (sampling, repetition penalty, ...) are not applied.
  ``generate_tokens`` is the same on token ids, with a ``TokenHook`` that may force tokens into
  a reply (a tool's output). ``tokens_generated`` and ``generation_seconds`` add up the tokens
  the model picked and the time spent generating, over the backend's life.

The shortcuts (the cached prefix, the packed rows) are checked once against the plain computation
on the first request that uses them, and dropped for a model whose results differ (a model that
ignores custom 4D masks, a cache it cannot reuse); ``describe()`` says which ran, and whether
generation merges rows into a running batch (``continuous``) or runs in ``waves``.

- ``generate`` with the calculator offered (``config.tools`` ``auto`` or ``calculator``) to a model
  that calls tools (``hf_toolcalls.tool_mode``: nanochat's tool tokens, or a chat template taking
  ``tools=``): ``hf_toolcalls`` runs the replies, as ``Completion``s with their tool calls, finish
  reason and token counts (``calculator`` for a model that calls no tools is an error).
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
import time
from collections.abc import Sequence
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError
from chattasks.eval.backends import hf_setup
from chattasks.eval.backends.base import BackendOption, Completion, GenerationConfig, LetterScores, Messages
from chattasks.eval.backends.hf_forward import ModelCall, batches
from chattasks.eval.backends.hf_generate import (
    Decoding,
    SlotDecoder,
    TokenHook,
    mergeable,
    requests_for,
    sample_seed,
)
from chattasks.eval.backends.hf_loglik import Question, Scores, loglik_packed, loglik_plain
from chattasks.eval.backends.hf_model import default_model_path, import_hf  # the first re-exported

__all__ = ["HFBackend", "TokenHook", "default_model_path"]

AGREEMENT_NATS = 0.2
"""Largest difference (nats; times sqrt(tokens) for a sum) a shortcut may show against the plain
computation on its first use: float32 noise is ~1e-5 and bfloat16's ~0.1, while a model that
ignores the shortcut's 4D mask or cache is off by about a nat."""
MIN_SHARED_PREFIX = 8
"""Shortest common prompt prefix (tokens) worth computing once and reusing from the KV cache."""


class HFBackend:
    """A transformers causal LM (local folder, Hub id or GGUF file) evaluated in-process."""

    name = "hf"
    OPTIONS = (
        BackendOption("gguf_file", str, "hf: GGUF file inside the model repo/folder."),
        BackendOption("device", str, "hf: cpu, cuda, cuda:1, ... (default: auto).", operational=True),
        BackendOption("dtype", str, "hf: float32, bfloat16, float16 (default: auto)."),
        BackendOption("batch_size", int, "hf: rows per forward pass.", operational=True),
        BackendOption("max_length", int, "hf: longest prompt + reply in tokens (default: the model's)."),
    )

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"max_length must be an integer >= 2 or None, got {max_length!r}")
        if dtype not in hf_setup.DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(hf_setup.DTYPES)}; got {dtype!r}")
        torch, transformers = import_hf()
        self._torch, self._transformers = torch, transformers
        if model is None and gguf_file is not None:
            raise ValueError("gguf_file= needs model=: the default model is already a GGUF file")
        self.batch_size = batch_size
        self.device = hf_setup.resolve_device(torch, device)
        self.dtype = hf_setup.resolve_dtype(torch, dtype, self.device)
        loaded = hf_setup.load_model(torch, transformers, model, gguf_file, self.device, self.dtype)
        self.tokenizer, self.model = loaded.tokenizer, loaded.model
        self.source, self.model_id, self.gguf_file = loaded.source, loaded.model_id, loaded.gguf_file
        self.loaded_from = loaded.loaded_from  # the converted copy of the default model, when one was used
        self.model.to(self.device).eval()
        self._pad_id = hf_setup.pad_id(self.tokenizer)
        self.stop_ids = hf_setup.stop_token_ids(self.tokenizer, self.model)  # the tokens that end a reply
        self._call = ModelCall.of(torch, self.model, self.device, self._pad_id)
        from chattasks.eval.backends.hf_toolcalls import tool_mode

        self.tool_mode = tool_mode(self.tokenizer)  # how the model calls tools: nanochat, template or None
        self.max_length = max_length or hf_setup.model_max_length(self.model, self.tokenizer)
        self._letter_ids: dict[str, int] = {}
        self.loglik_method: str | None = None  # "packed" or "plain", settled on the first call
        self.prefix_sharing: bool | None = None  # reuse of a cached shared prefix, settled on first use
        self.generation: str | None = None  # "continuous" or "waves", settled on the first generate
        self.tokens_generated = 0  # tokens the model picked in all generate calls (forced ones not counted)
        self.generation_seconds = 0.0  # time spent in those calls

    # ----- setup ------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Backend, model (name, where it was read) and GGUF file, dtype, device, batch size, versions."""
        return {
            "backend": self.name,
            "model": self.model_id,
            "source": self.source,
            "gguf_file": self.gguf_file,
            "loaded_from": self.loaded_from,
            "dtype": self.dtype,
            "device": self.device,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "loglik_method": self.loglik_method,
            "prefix_sharing": self.prefix_sharing,
            "tool_mode": self.tool_mode,
            "generation": self.generation,
            "torch": self._torch.__version__,
            "transformers": importlib.metadata.version("transformers"),
        }

    def close(self) -> None:
        """Drop the model (and free its GPU memory)."""
        self.__dict__.pop("model", None)
        self.__dict__.pop("_call", None)
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    # ----- tokenising -------------------------------------------------------------------------
    def chat_ids(self, messages: Messages) -> list[int]:
        """The prompt's token ids: the chat template with the generation prompt (tool parts as text)."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            raise BackendError(
                f"model {self.model_id} has no chat template: evaluate a chat (instruct) model, "
                "or score multiple choice with --mc-scorer loglik"
            )
        plain = [{"role": m["role"], "content": assistant_text(m["content"])} for m in messages]
        text = tok.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        ids: list[int] = tok.encode(text, add_special_tokens=False)
        if len(ids) > self.max_length:
            raise BackendError(
                f"a prompt of {len(ids)} tokens exceeds max_length={self.max_length}; pass a larger max_length "
                "if the model allows it"
            )
        return ids

    def letter_id(self, letter: str) -> int:
        """The token id of ``letter``; BackendError when it is not exactly one token."""
        if letter not in self._letter_ids:
            ids = self.tokenizer.encode(letter, add_special_tokens=False)
            if len(ids) != 1:
                pieces = self.tokenizer.convert_ids_to_tokens(ids)
                raise BackendError(
                    f"letter {letter!r} is {len(ids)} tokens {pieces} for this tokenizer, not one; "
                    "letter scoring needs single-token letters: use --mc-scorer loglik or generate"
                )
            self._letter_ids[letter] = int(ids[0])
        return self._letter_ids[letter]

    def _encode(self, text: str) -> list[int]:
        """lm-eval's ``tok_encode``: the tokenizer's special tokens, unless the text starts with BOS."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=add_special)
        return ids

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) exactly as lm-eval's HFLM splits a causal LM request."""
        if context == "":
            cont = self.tokenizer.encode(continuation, add_special_tokens=False)
            prefix = self.tokenizer.bos_token_id
            prefix = self.tokenizer.eos_token_id if prefix is None else prefix
            return ([prefix], cont) if not cont or cont[0] != prefix else (cont[:1], cont[1:])
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self._encode(context + continuation)
        ctx = self._encode(context)
        return ctx, whole[len(ctx) :]

    # ----- the Backend interface --------------------------------------------------------------
    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """Log-probability of each letter as the first token of the reply, from one forward pass per batch."""
        if len(prompts) != len(letters):
            raise ValueError(f"got {len(prompts)} prompts but {len(letters)} letter lists")
        token_ids = [[self.letter_id(letter) for letter in row] for row in letters]
        rows = [self.chat_ids(messages) for messages in prompts]
        out: list[LetterScores | None] = [None] * len(rows)
        with self._torch.inference_mode():
            shared = self._shared_prefix(rows)
            for batch in batches([len(r) for r in rows], self.batch_size):
                logprobs = self._last_logprobs([rows[i] for i in batch], shared)
                for k, i in enumerate(batch):
                    values = logprobs[k, token_ids[i]].tolist()
                    out[i] = LetterScores(dict(zip(letters[i], values)), method="logits")
        return [result for result in out if result is not None]

    def _shared_prefix(self, rows: Sequence[list[int]]) -> tuple[int, Any] | None:
        """(length, KV cache) of the prefix every row shares (the system prompt, the task's preamble).

        None when it is too short to pay, or this model's cache cannot be reused (checked once).
        """
        if len(rows) < 2 or self.prefix_sharing is False:
            return None
        length = len(os.path.commonprefix(list(rows)))
        length = min(length, min(len(r) for r in rows) - 1)  # every row keeps a token of its own
        if length < MIN_SHARED_PREFIX:
            return None
        try:
            ids = self._torch.tensor([rows[0][:length]], device=self.device)
            _, cache = self._call.logits(ids, None, None, keep=1, use_cache=True)
            shared = (length, cache)
            if self.prefix_sharing is None:  # first use: the cached prefix must change nothing
                reused = self._last_logprobs(rows[:1], shared)
                fresh = self._last_logprobs(rows[:1], None)
                likeliest = fresh.topk(16, dim=-1).indices
                gap = (reused.gather(-1, likeliest) - fresh.gather(-1, likeliest)).abs().max()
                self.prefix_sharing = bool(gap <= AGREEMENT_NATS)
        except (AttributeError, TypeError, ValueError, RuntimeError):
            self.prefix_sharing = False
        return shared if self.prefix_sharing else None

    def _last_logprobs(self, rows: Sequence[list[int]], shared: tuple[int, Any] | None) -> Any:
        """Log-probabilities after the last token of each row, (rows, vocab); ``shared``: a cached prefix."""
        call = self._call
        if shared is None:
            return call.logprobs(*call.left_padded(rows), keep=1)[:, -1, :]
        length, cache = shared
        ids, mask, positions = call.left_padded([row[length:] for row in rows])
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(rows))
        mask = self._torch.cat([mask.new_ones((len(rows), length)), mask], dim=1)
        return call.logprobs(ids, mask, positions + length, keep=1, cache=past)[:, -1, :]

    def loglikelihoods(
        self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
    ) -> list[list[tuple[float, int]]]:
        """(summed log-probability, token count) of each continuation, lm-eval style, prefix computed once."""
        if len(contexts) != len(continuations):
            raise ValueError(f"got {len(contexts)} contexts but {len(continuations)} continuation lists")
        questions = [self._question(c, conts) for c, conts in zip(contexts, continuations)]
        with self._torch.inference_mode():
            if self.loglik_method is None and questions:
                self._choose_loglik_method(questions[0])
            if self.loglik_method == "packed":
                return loglik_packed(self._call, questions, self.batch_size, self.dtype)
            return loglik_plain(self._call, questions, self.max_length, self.batch_size)

    def _question(self, context: str, continuations: Sequence[str]) -> Question:
        """One question's shared context ids and continuation ids, the context left-truncated to fit."""
        pairs = [self.encode_pair(context, continuation) for continuation in continuations]
        if not pairs:
            return self._encode(context) or [self._pad_id], []
        conts = [cont for _, cont in pairs]
        longest = max(len(cont) for cont in conts)
        if longest == 0 or longest > self.max_length:
            raise BackendError(
                f"a continuation of {longest} tokens cannot be scored (max_length={self.max_length}); "
                f"continuations: {[c[:40] for c in continuations]!r}"
            )
        ctx = pairs[0][0]  # the same for every continuation: encode_pair's context depends on it alone
        return ctx[-(self.max_length + 1 - longest) :], conts

    def _choose_loglik_method(self, question: Question) -> None:
        """Packed rows unless they disagree with plain rows on ``question`` (a model ignoring 4D masks)."""
        packed: Scores = loglik_packed(self._call, [question], self.batch_size, self.dtype)
        plain: Scores = loglik_plain(self._call, [question], self.max_length, self.batch_size)
        agree = all(abs(a - b) <= AGREEMENT_NATS * n**0.5 for (a, n), (b, _) in zip(packed[0], plain[0]))
        self.loglik_method = "packed" if agree else "plain"

    def generate(
        self, prompts: Sequence[Messages], config: GenerationConfig, *, hook: TokenHook | None = None
    ) -> list[list[str | Completion]]:
        """``config.num_samples`` replies per prompt, greedy or sampled with per-sample seeds."""
        if config.tools != "none" and (self.tool_mode is not None or config.tools == "calculator"):
            return self._generate_with_tools(prompts, config)
        rows = [self.chat_ids(messages) for messages in prompts]
        tokens = self.generate_tokens(rows, config, hook=hook)
        return [[self.reply_completion(reply) for reply in samples] for samples in tokens]

    def _generate_with_tools(
        self, prompts: Sequence[Messages], config: GenerationConfig
    ) -> list[list[str | Completion]]:
        """The replies with the calculator offered (see the module docstring)."""
        from chattasks.eval.backends import hf_toolcalls

        if self.tool_mode is None:
            raise BackendError(
                f"model {self.model_id} calls no tools (no nanochat tool tokens, and its chat template "
                "takes no tools=): run with --tools none"
            )

        def processors(jobs: Sequence[tuple[int, int]], inputs: Sequence[Sequence[int]]) -> list[Any]:
            if config.temperature == 0:
                return []
            seeds = [sample_seed(config.seed, sample, row) for (_, sample), row in zip(jobs, inputs)]
            return [hf_toolcalls.SeededSampler(self._torch, seeds, config, self.device)]

        run = (
            hf_toolcalls.generate_nanochat if self.tool_mode == "nanochat" else hf_toolcalls.generate_template
        )
        return [list(samples) for samples in run(self, prompts, config, processors)]

    def generate_tokens(
        self, prompts: Sequence[Sequence[int]], config: GenerationConfig, *, hook: TokenHook | None = None
    ) -> list[list[list[int]]]:
        """Reply token ids, ``config.num_samples`` per prompt of token ids (a reply ends with the stop
        token it met, if any); ``hook`` may force tokens into a reply (``hf_generate.TokenHook``)."""
        seed = config.seed if config.temperature > 0 else None
        requests = requests_for(prompts, config.num_samples, config.max_new_tokens, self.max_length, seed)
        decoding = Decoding(config.temperature, config.top_k, frozenset(self.stop_ids))
        begun = time.perf_counter()
        if self.generation is None:
            self.generation = "continuous" if self._cache_mergeable() else "waves"
        decoder = SlotDecoder(
            self._call, decoding, self.batch_size, continuous=self.generation == "continuous", hook=hook
        )
        try:
            replies = decoder.run(requests)
        finally:
            self.tokens_generated += decoder.sampled
            self.generation_seconds += time.perf_counter() - begun
        out: list[list[list[int]]] = [[] for _ in prompts]
        for request, reply in zip(requests, replies):
            out[request.prompt].append(reply)
        return out

    def _cache_mergeable(self) -> bool:
        """Whether this model's KV cache takes rows merged into it (a two-token probe)."""
        ids = self._torch.tensor([[self._pad_id] * 2], device=self.device)
        with self._torch.inference_mode():
            _, cache = self._call.logits(ids, None, None, keep=1, use_cache=True)
        return mergeable(cache, self.model.config)

    def reply_completion(self, tokens: Sequence[int]) -> Completion:
        """A reply of ``generate_tokens`` as a Completion: its text, ``stop`` when it ended at a stop
        token and ``length`` when at its token limit, and its token count (the stop token included)."""
        stopped = bool(tokens) and tokens[-1] in self.stop_ids
        return Completion(
            self.reply_text(tokens), finish_reason="stop" if stopped else "length", tokens=len(tokens)
        )

    def reply_text(self, tokens: Sequence[int]) -> str:
        """The text of reply tokens up to the first stop token, special tokens dropped."""
        stop = set(self.stop_ids)
        end = next((n for n, t in enumerate(tokens) if t in stop), len(tokens))
        text: str = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
        return text
