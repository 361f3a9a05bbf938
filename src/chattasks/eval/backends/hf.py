"""The ``hf`` backend: a transformers causal LM run in this process, on CPU or one GPU.

    >>> backend = HFBackend()  # the embedded SmolLM2-135M-Instruct (pip install 'chattasks[hf]')
    >>> backend.letter_scores([[{"role": "user", "content": "2+2? 4=A, 5=B"}]], [["A", "B"]])[0].scores
    {'A': -2.04..., 'B': -3.89...}  # log-probabilities of each letter opening the reply

``model`` is a local folder, a Hub id, or None for the embedded SmolLM2-135M-Instruct GGUF file,
which needs no network and whose dequantised copy is cached (``hf_model`` says where both live).
``gguf_file`` names a GGUF file inside the folder or repo (transformers dequantises it on load).
A local path, or ``HF_HUB_OFFLINE=1``, loads with ``local_files_only``.

``device="auto"`` is ``cuda`` (``cuda:$LOCAL_RANK`` under torchrun) when available, else ``cpu``.
``dtype="auto"`` is bfloat16 on CUDA (float16 where bf16 is unsupported) and on CPUs with AMX
tiles, else float32: on an AVX-512 CPU without AMX, bf16 matrix products ran at 0.65x the speed
of float32 (133 vs 207 GFLOPS on 2 cores), and float32 keeps batched and unbatched scores equal
to ~1e-5 (bf16: ~0.1 nats).

How each request is computed (prompts are sorted by length into forward passes of at most
``batch_size`` rows, cut early rather than pad a full pass by more than 10%):

- ``letter_scores``: the chat template with the generation prompt, left padded with an attention
  mask and explicit position ids (so padding moves no token), one forward pass per batch keeping
  only the last position's logits; a letter's score is its log-probability over the whole
  vocabulary, and every letter must be one token. The prefix all prompts of a call share (the
  system prompt, the task's preamble) is computed once and reused from the KV cache.
- ``loglikelihoods``: tokenised as lm-eval's ``HFLM`` does (trailing context whitespace moves to
  the continuation; the pair is encoded whole and the context's tokens split off; the
  tokenizer's own special tokens; an empty context becomes the BOS, else EOS, token), so the
  numbers match lm-eval's. Each question is one packed row: its context once, then every
  continuation but its last token, with a 4D attention mask that lets a continuation see the
  context and itself only, and position ids restarting after the context for each continuation.
  The shared context is computed once, and a one-token continuation costs nothing beyond it.
- ``generate``: left padded batches through ``model.generate``, stopping at the tokenizer's EOS,
  the generation config's EOS ids and the token the chat template closes a turn with; only the
  new text is returned, special tokens dropped. Greedy at temperature 0; otherwise each sample
  draws from its own generator seeded by (``config.seed``, sample number, prompt), so a sample
  does not depend on which other prompts share its batch, process or run.
  The model's shipped generation defaults (sampling, repetition penalty, ...) are not applied.
- ``generate`` with the calculator offered (``config.tools`` ``auto`` or ``calculator``) to a model
  that calls tools (``hf_toolcalls.tool_mode``: nanochat's tool tokens, or a chat template taking
  ``tools=``): ``hf_toolcalls`` runs the replies, as ``Completion``s with their tool calls, finish
  reason and token counts (``calculator`` for a model that calls no tools is an error).

Both shortcuts (the cached prefix, the packed rows) are checked once against the plain
computation on the first request that uses them, and dropped for a model whose results differ
(a model that ignores custom 4D masks, a cache it cannot reuse); ``describe()`` says which ran.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import inspect
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.errors import BackendError
from chattasks.eval.backends.base import BackendOption, Completion, GenerationConfig, LetterScores, Messages
from chattasks.eval.backends.hf_model import (  # default_model_path is re-exported from here
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_PACKAGE,
    converted_dir,
    default_model_path,
    env_flag,
    import_hf,
    is_complete_copy,
    quiet_loading,
    save_converted,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")
AGREEMENT_NATS = 0.2
"""Largest difference (nats; times sqrt(tokens) for a sum) a shortcut may show against the plain computation on its first
use: float32 noise is ~1e-5 and bfloat16's ~0.1, while a model that ignores the shortcut's 4D mask
or cache is off by about a nat."""
PADDING_SLACK = 0.1
MIN_BATCH_TOKENS = 256
"""Batching: a batch of at least MIN_BATCH_TOKENS real tokens is cut before padding exceeds
PADDING_SLACK of them (on CPU, throughput is flat from a few hundred tokens a batch on)."""
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
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
        torch, transformers = import_hf()
        self._torch, self._transformers = torch, transformers
        default = model is None
        if model is None:
            if gguf_file is not None:
                raise ValueError("gguf_file= needs model=: the default model is already a GGUF file")
            path = default_model_path()
            source, gguf_file = str(path.parent), path.name
            version = importlib.metadata.version(DEFAULT_MODEL_PACKAGE)
            self.model_id = f"SmolLM2-135M-Instruct ({DEFAULT_MODEL_PACKAGE} {version})"
        else:
            source = self.model_id = os.fspath(model)
        self.source = source
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self.device = self._resolve_device(device)
        self.dtype = self._resolve_dtype(dtype)
        self.loaded_from: str | None = None  # the converted copy of the default model, when one was used
        copy_dir = converted_dir(Path(source) / DEFAULT_MODEL_FILE, self.dtype) if default else None
        if copy_dir is not None and is_complete_copy(copy_dir):
            try:
                self._load(str(copy_dir), {"local_files_only": True})
                self.loaded_from = str(copy_dir)
            except BackendError:  # a damaged copy: the GGUF file is still there
                copy_dir = None
        if self.loaded_from is None:
            local = Path(source).expanduser().exists()
            offline = local or env_flag(os.environ.get("HF_HUB_OFFLINE"))
            options: dict[str, Any] = {"local_files_only": offline}
            if gguf_file is not None:
                options["gguf_file"] = gguf_file
            try:
                self._load(source, options)
            except BackendError as exc:
                hint = (
                    ""
                    if local or not offline
                    else "; offline, only models already in the Hugging Face cache load"
                )
                raise BackendError(f"{exc}{hint}") from exc.__cause__
            if copy_dir is not None:
                save_converted(self.model, self.tokenizer, copy_dir, transformers)
        self.model.to(self.device).eval()
        self._stop_ids = self._stop_token_ids()
        # Decode with exactly the settings asked for, never the model's shipped defaults.
        self.model.generation_config = transformers.GenerationConfig(
            bos_token_id=self.tokenizer.bos_token_id,
            eos_token_id=self._stop_ids,
            pad_token_id=self._pad_id,
        )
        self.max_length = max_length or self._model_max_length()
        keep = inspect.signature(self.model.forward).parameters
        self._keep_arg = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in keep), None)
        self._letter_ids: dict[str, int] = {}
        self.loglik_method: str | None = None  # "packed" or "plain", settled on the first call
        self.prefix_sharing: bool | None = (
            None  # reuse of a cached common prompt prefix, settled on first use
        )
        from chattasks.eval.backends.hf_toolcalls import tool_mode

        self.tool_mode = tool_mode(self.tokenizer)  # how the model calls tools: nanochat, template or None

    # ----- setup ------------------------------------------------------------------------------
    def _load(self, source: str, options: dict[str, Any]) -> None:
        """Load the tokenizer and the model; BackendError in one line when they cannot be."""
        torch, transformers = self._torch, self._transformers
        placement = {"device_map": self.device} if self.device != "cpu" else {}
        try:
            with quiet_loading(transformers):
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **options)
                self.model = transformers.AutoModelForCausalLM.from_pretrained(
                    source, dtype=getattr(torch, self.dtype), **placement, **options
                )
        except (OSError, ValueError, KeyError) as exc:
            gguf = options.get("gguf_file")
            where = source + (f" (gguf_file={gguf})" if gguf else "")
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                f"could not load model {where}: {first}; pass a local model folder or a Hub id "
                "(and --gguf-file for a GGUF file)"
            ) from exc

    def _resolve_device(self, device: str) -> str:
        torch = self._torch
        if device != "auto":
            try:
                torch.device(device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be auto, cpu, cuda, cuda:N, ...; got {device!r}") from None
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise BackendError(
                    f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu"
                )
            return device
        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', torch.cuda.current_device()))}"
        return "cpu"

    def _resolve_dtype(self, dtype: str) -> str:
        if dtype != "auto":
            return dtype
        torch = self._torch
        if self.device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if self.device == "cpu":
            try:
                amx = bool(torch.cpu._is_amx_tile_supported())
            except (AttributeError, RuntimeError):
                amx = False
            return "bfloat16" if amx else "float32"
        return "float32"

    @property
    def _pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0  # pragma: no cover

    def _stop_token_ids(self) -> list[int]:
        """EOS ids of the tokenizer and the model's generation config, and the end-of-turn token."""
        ids: list[int] = []
        shipped = getattr(self.model, "generation_config", None)
        eos = getattr(shipped, "eos_token_id", None)
        for value in [self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])]:
            if value is not None and int(value) not in ids:
                ids.append(int(value))
        end_of_turn = self._end_of_turn_id()
        if end_of_turn is not None and end_of_turn not in ids:
            ids.append(end_of_turn)
        return ids

    def _end_of_turn_id(self) -> int | None:
        """The special token the chat template writes right after an assistant message, if any."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            return None
        marker = "chattasks-end-of-turn-probe"
        try:
            text = tok.apply_chat_template(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
            )
        except Exception:  # a template that refuses this shape just gives no end-of-turn token
            return None
        after = text.split(marker, 1)[-1] if marker in text else ""
        ids = tok.encode(after, add_special_tokens=False) if after else []
        special = set(tok.all_special_ids)
        return next((int(i) for i in ids if i in special), None)

    def _model_max_length(self) -> int:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 2048

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
            "torch": self._torch.__version__,
            "transformers": importlib.metadata.version("transformers"),
        }

    def close(self) -> None:
        """Drop the model (and free its GPU memory)."""
        self.__dict__.pop("model", None)
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    # ----- tokenising -------------------------------------------------------------------------
    def _chat_ids(self, messages: Messages) -> list[int]:
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

    # ----- forward passes ---------------------------------------------------------------------
    def _forward(self, ids: Any, mask: Any, positions: Any, keep: int, past_key_values: Any = None) -> Any:
        """float32 log-probabilities of the last ``keep`` positions, shape (batch, keep, vocab)."""
        torch = self._torch
        kwargs: dict[str, Any] = {"attention_mask": mask, "position_ids": positions}
        if past_key_values is None:
            kwargs["use_cache"] = False
        else:
            kwargs.update(past_key_values=past_key_values, use_cache=True)
        if self._keep_arg is not None:
            kwargs[self._keep_arg] = keep
        with torch.inference_mode():
            logits = self.model(input_ids=ids, **kwargs).logits[:, -keep:, :]
            return torch.log_softmax(logits.float(), dim=-1)

    def _left_padded(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        """Rows left padded into (ids, attention mask, position ids) tensors on the device."""
        torch = self._torch
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Indices grouped into batches, longest first: at most ``batch_size`` rows, and a batch
        that already holds ``MIN_BATCH_TOKENS`` ends rather than pad more than ``PADDING_SLACK``."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batch: list[int] = []
        real = 0
        for i in order:
            if batch:
                width = lengths[batch[0]]
                full = len(batch) == self.batch_size
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

    # ----- the Backend interface --------------------------------------------------------------
    def letter_scores(
        self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]]
    ) -> list[LetterScores]:
        """Log-probability of each letter as the first token of the reply, from one forward pass per batch."""
        if len(prompts) != len(letters):
            raise ValueError(f"got {len(prompts)} prompts but {len(letters)} letter lists")
        token_ids = [[self.letter_id(letter) for letter in row] for row in letters]
        rows = [self._chat_ids(messages) for messages in prompts]
        out: list[LetterScores | None] = [None] * len(rows)
        with self._torch.inference_mode():
            shared = self._shared_prefix(rows)
            for batch in self._batches([len(r) for r in rows]):
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
            cache = self.model(
                input_ids=self._torch.tensor([rows[0][:length]], device=self.device), use_cache=True
            ).past_key_values
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
        if shared is None:
            return self._forward(*self._left_padded(rows), keep=1)[:, -1, :]
        length, cache = shared
        ids, mask, positions = self._left_padded([row[length:] for row in rows])
        torch = self._torch
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(rows))
        prefix_mask = torch.ones((len(rows), length), dtype=mask.dtype, device=mask.device)
        mask = torch.cat([prefix_mask, mask], dim=1)
        return self._forward(ids, mask, positions + length, keep=1, past_key_values=past)[:, -1, :]

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
                return self._loglik_packed(questions)
            return self._loglik_plain(questions)

    def _question(self, context: str, continuations: Sequence[str]) -> tuple[list[int], list[list[int]]]:
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

    def _choose_loglik_method(self, question: tuple[list[int], list[list[int]]]) -> None:
        """Packed rows unless they disagree with plain rows on ``question`` (a model ignoring 4D masks)."""
        packed = self._loglik_packed([question])[0]
        plain = self._loglik_plain([question])[0]
        agree = all(abs(a - b) <= AGREEMENT_NATS * n**0.5 for (a, n), (b, _) in zip(packed, plain))
        self.loglik_method = "packed" if agree else "plain"

    def _loglik_plain(
        self, questions: Sequence[tuple[list[int], list[list[int]]]]
    ) -> list[list[tuple[float, int]]]:
        """Reference scoring: one row per (context, continuation) pair, as lm-eval runs it."""
        pairs = [(q, j) for q, (_, conts) in enumerate(questions) for j in range(len(conts))]
        rows = [(questions[q][0] + questions[q][1][j])[-(self.max_length + 1) :][:-1] for q, j in pairs]
        results: list[list[tuple[float, int]]] = [[(0.0, 0)] * len(conts) for _, conts in questions]
        for batch in self._batches([len(r) for r in rows]):
            targets = [questions[pairs[i][0]][1][pairs[i][1]] for i in batch]
            keep = max(len(t) for t in targets)
            logprobs = self._forward(*self._left_padded([rows[i] for i in batch]), keep=keep)
            for k, (i, target) in enumerate(zip(batch, targets)):
                picked = logprobs[k, keep - len(target) :, :].gather(
                    -1, self._torch.tensor(target, device=logprobs.device)[:, None]
                )
                q, j = pairs[i]
                results[q][j] = (float(picked.sum()), len(target))
        return results

    def _loglik_packed(
        self, questions: Sequence[tuple[list[int], list[list[int]]]]
    ) -> list[list[tuple[float, int]]]:
        """One row per question: context, then each continuation minus its last token (see module doc).

        Rows are left padded; the kept logits are the last ``longest tail + 1`` positions.
        """
        torch = self._torch
        results: list[list[tuple[float, int]]] = [[] for _ in questions]
        tails = [sum(len(c) - 1 for c in conts) for _, conts in questions]
        lengths = [len(ctx) + tail for (ctx, _), tail in zip(questions, tails)]
        for batch in self._batches(lengths):
            width = max(lengths[q] for q in batch)
            keep = max(tails[q] for q in batch) + 1
            ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
            segment = torch.full((len(batch), width), -1, dtype=torch.long)  # -1 pad, 0 context, j+1 choice j
            positions = torch.zeros((len(batch), width), dtype=torch.long)
            for k, q in enumerate(batch):
                ctx, conts = questions[q]
                at = width - lengths[q]
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
            mask = self._packed_mask(segment)
            logprobs = self._forward(ids.to(self.device), mask, positions.to(self.device), keep=keep)
            for k, q in enumerate(batch):
                last = keep - tails[q] - 1  # the kept column of the context's last token
                at = last + 1
                for cont in questions[q][1]:
                    columns = [last, *range(at, at + len(cont) - 1)]
                    picked = logprobs[k, columns, cont]
                    results[q].append((float(picked.sum()), len(cont)))
                    at += len(cont) - 1
        return results

    def _packed_mask(self, segment: Any) -> Any:
        """The additive 4D mask of packed rows: causal, context visible to all, choices blind to each other.

        Padding attends to itself only, so no row of the attention is empty (which would give NaN).
        """
        torch = self._torch
        width = segment.shape[1]
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        key, query = segment[:, None, :], segment[:, :, None]
        allowed = causal & (key >= 0) & ((key == 0) | (key == query))
        allowed |= torch.eye(width, dtype=torch.bool)
        dtype = getattr(torch, self.dtype)
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        return mask[:, None, :, :].to(self.device)

    def generate(self, prompts: Sequence[Messages], config: GenerationConfig) -> list[list[str | Completion]]:
        """``config.num_samples`` replies per prompt, greedy or sampled with per-sample seeds."""
        if config.tools != "none" and (self.tool_mode is not None or config.tools == "calculator"):
            return self._generate_with_tools(prompts, config)
        torch = self._torch
        rows = [self._chat_ids(messages) for messages in prompts]
        jobs = [(p, s) for p in range(len(rows)) for s in range(config.num_samples)]
        out: list[list[str | Completion]] = [[""] * config.num_samples for _ in rows]
        with torch.inference_mode():
            for batch in self._batches([len(rows[p]) for p, _ in jobs]):
                batch.sort()  # samples of one prompt stay together, in sample order
                inputs = [rows[jobs[i][0]] for i in batch]
                room = self.max_length - max(len(r) for r in inputs)
                if room < 1:
                    raise BackendError(f"no room to generate: the prompt fills max_length={self.max_length}")
                ids, mask, _ = self._left_padded(inputs)
                options: dict[str, Any] = {
                    "max_new_tokens": min(config.max_new_tokens, room),
                    "do_sample": False,
                }
                if config.temperature > 0:
                    seeds = [_sample_seed(config.seed, jobs[i][1], rows[jobs[i][0]]) for i in batch]
                    sampler = _SeededSampler(torch, seeds, config, self.device)
                    options["logits_processor"] = self._transformers.LogitsProcessorList([sampler])
                new = self.model.generate(input_ids=ids, attention_mask=mask, **options)[:, ids.shape[1] :]
                for k, i in enumerate(batch):
                    p, s = jobs[i]
                    out[p][s] = self._decode(new[k].tolist())
        return out

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
            seeds = [_sample_seed(config.seed, sample, row) for (_, sample), row in zip(jobs, inputs)]
            return [_SeededSampler(self._torch, seeds, config, self.device)]

        run = (
            hf_toolcalls.generate_nanochat if self.tool_mode == "nanochat" else hf_toolcalls.generate_template
        )
        return [list(samples) for samples in run(self, prompts, config, processors)]

    def _decode(self, tokens: list[int]) -> str:
        stop = set(self._stop_ids)
        end = next((n for n, t in enumerate(tokens) if t in stop), len(tokens))
        text: str = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
        return text


def _sample_seed(seed: int, sample: int, prompt: Sequence[int]) -> int:
    digest = hashlib.sha256(f"{seed}:{sample}:{','.join(map(str, prompt))}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class _SeededSampler:
    """A logits processor that samples each row with its own generator and leaves greedy decoding
    only the drawn token to pick (temperature, then top-k, then a draw from the softmax)."""

    def __init__(self, torch: Any, seeds: Sequence[int], config: GenerationConfig, device: str) -> None:
        self.torch = torch
        self.temperature = config.temperature
        self.top_k = config.top_k
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        logits = scores.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            cutoff = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < cutoff, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        chosen = torch.stack(
            [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)]
        )
        picked = torch.full_like(scores, float("-inf"))
        return picked.scatter(1, chosen, 0.0)
