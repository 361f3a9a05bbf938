"""How the ``hf`` backend offers the calculator while a model generates.

``tool_mode(tokenizer)`` says how a model calls tools, if it does:

- ``nanochat``: the tokenizer holds nanochat's tool tokens (``<|python_start|>`` ...). Replies
  are decoded by ``hf_tools.generate_with_tools`` with a ``CalculatorHook`` row per sample: the
  calculator's output is forced into the row as nanochat's engine does, while the other rows go
  on. Prompts use the chat template when there is one, else nanochat's own rendering. The reply
  keeps its tool tokens as text (``<|python_start|>12*3<|python_end|><|output_start|>36...``).
- ``template``: the chat template takes ``tools=`` (it names the variable). Each sample is a
  ``ToolConversation``: the prompt is rendered with the calculator in ``tools``, the reply's
  calls are read by ``parse_template_calls``, run, and the conversation rendered again with the
  assistant's calls and the tool messages, in rounds: every sample still talking is decoded
  together in the next round.
- None: the model calls no tools.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.eval.backends.base import Completion, GenerationConfig, Messages
from chattasks.eval.backends.hf_forward import batches
from chattasks.eval.backends.hf_tools import GeneratedRow, Processor, generate_with_tools
from chattasks.eval.reasoning import reasoning_token_count, resolve_tags
from chattasks.eval.tool_chat import ToolConversation, parse_template_calls
from chattasks.tools.calls import CALCULATOR_SCHEMA
from chattasks.tools.forcing import CalculatorHook

NANOCHAT_STOPS = ("<|assistant_end|>", "<|bos|>")
"""Tokens that end a nanochat reply (as nanochat's engine stops on them)."""


def template_takes_tools(template: str | None) -> bool:
    """Whether a chat template reads a ``tools`` variable."""
    if not template:
        return False
    try:
        import jinja2
        import jinja2.meta

        return "tools" in jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except Exception:  # a template using extensions the plain environment lacks: read it as text
        return re.search(r"\btools\b", template) is not None


def tool_mode(tokenizer: Any) -> str | None:
    """``nanochat``, ``template`` or None (see the module docstring)."""
    if CalculatorHook.for_tokenizer(tokenizer) is not None:
        return "nanochat"
    template = getattr(tokenizer, "chat_template", None)
    return "template" if isinstance(template, str) and template_takes_tools(template) else None


def nanochat_prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """A chat prompt in nanochat's rendering, ending with ``<|assistant_start|>`` (a system
    message merged into the first user message, as nanochat does)."""
    special = tokenizer.convert_tokens_to_ids
    bos = special("<|bos|>")
    ids = [bos if bos is not None and bos != tokenizer.unk_token_id else special("<|endoftext|>")]
    merged = [dict(m) for m in messages]
    if len(merged) > 1 and merged[0]["role"] == "system":
        merged = [
            {"role": "user", "content": f"{merged[0]['content']}\n\n{merged[1]['content']}"},
            *merged[2:],
        ]
    for message in merged:
        role = "user" if message["role"] == "user" else "assistant"
        ids.append(special(f"<|{role}_start|>"))
        ids.extend(tokenizer.encode(assistant_text(message["content"]), add_special_tokens=False))
        ids.append(special(f"<|{role}_end|>"))
    ids.append(special("<|assistant_start|>"))
    return [int(i) for i in ids]


def _decode(tokenizer: Any, tokens: Sequence[int]) -> str:
    return str(tokenizer.decode(list(tokens), skip_special_tokens=False))


def _completion(tokenizer: Any, row: GeneratedRow, config: GenerationConfig, calls: Any) -> Completion:
    tags = resolve_tags(config.reasoning_tags, getattr(tokenizer, "chat_template", None))
    return Completion(
        _decode(tokenizer, row.tokens),
        finish_reason=row.finish_reason,
        tokens=len(row.tokens),
        reasoning_tokens=reasoning_token_count(row.tokens, lambda ids: _decode(tokenizer, ids), tags),
        tool_calls=tuple(calls),
        tools="calculator",
    )


def generate_nanochat(
    backend: Any, prompts: Sequence[Messages], config: GenerationConfig, processors: Any
) -> list[list[Completion]]:
    """``config.num_samples`` replies per prompt with the calculator forced in (``nanochat`` mode).

    ``processors(batch_jobs) -> list of logits processors``: the backend's sampler for a batch.
    """
    tokenizer = backend.tokenizer
    hook = CalculatorHook.for_tokenizer(tokenizer)
    assert hook is not None  # tool_mode said nanochat
    render = backend.chat_ids if getattr(tokenizer, "chat_template", None) else None
    rows = [render(p) if render else nanochat_prompt_ids(tokenizer, p) for p in prompts]
    stops = [*backend.stop_ids, *(tokenizer.convert_tokens_to_ids(t) for t in NANOCHAT_STOPS)]
    jobs = [(p, s) for p in range(len(rows)) for s in range(config.num_samples)]
    out: list[list[Completion]] = [[Completion("")] * config.num_samples for _ in rows]
    for batch in batches([len(rows[p]) for p, _ in jobs], backend.batch_size):
        batch.sort()
        inputs = [rows[jobs[i][0]] for i in batch]
        states = [hook.new_row() for _ in batch]
        generated = generate_with_tools(
            backend.model,
            inputs,
            max_new_tokens=_room(backend, inputs, config),
            stop_ids=[i for i in stops if i is not None],
            pad_id=backend._pad_id,
            hooks=states,
            processors=processors([jobs[i] for i in batch], inputs),
        )
        for i, row, state in zip(batch, generated, states):
            p, s = jobs[i]
            out[p][s] = _completion(tokenizer, row, config, state.calls)
    return out


def generate_template(
    backend: Any, prompts: Sequence[Messages], config: GenerationConfig, processors: Any
) -> list[list[Completion]]:
    """``config.num_samples`` replies per prompt, the calculator offered through the chat template."""
    tokenizer = backend.tokenizer
    jobs = [(p, s) for p in range(len(prompts)) for s in range(config.num_samples)]
    talks = [
        ToolConversation(
            [{"role": m["role"], "content": assistant_text(m["content"])} for m in prompts[p]],
            max_new_tokens=config.max_new_tokens,
        )
        for p, _ in jobs
    ]
    pending = list(range(len(jobs)))
    while pending:
        rows = {j: _template_ids(backend, talks[j]) for j in pending}
        still = []
        for batch in batches([len(rows[j]) for j in pending], backend.batch_size):
            members = sorted(pending[k] for k in batch)
            inputs = [rows[j] for j in members]
            generated = generate_with_tools(
                backend.model,
                inputs,
                max_new_tokens=_room(backend, inputs, config),
                stop_ids=backend.stop_ids,
                pad_id=backend._pad_id,
                processors=processors([jobs[j] for j in members], inputs),
                limits=[_budget(talks[j], config) for j in members],
            )
            for j, row in zip(members, generated):
                text = _decode(tokenizer, row.tokens)
                head, calls = parse_template_calls(text, talks[j].turns)
                if talks[j].add_turn(head, calls, finish_reason=row.finish_reason, tokens=len(row.tokens)):
                    still.append(j)
        pending = still
    out: list[list[Completion]] = [[Completion("")] * config.num_samples for _ in prompts]
    for (p, s), talk in zip(jobs, talks):
        out[p][s] = talk.completion()
    return out


def _template_ids(backend: Any, talk: ToolConversation) -> list[int]:
    text = backend.tokenizer.apply_chat_template(
        talk.template_messages(), tools=[CALCULATOR_SCHEMA], tokenize=False, add_generation_prompt=True
    )
    return list(backend.tokenizer.encode(text, add_special_tokens=False))


def _budget(talk: ToolConversation, config: GenerationConfig) -> int:
    remaining = talk.remaining_tokens
    return config.max_new_tokens if remaining is None else remaining


def _room(backend: Any, inputs: Sequence[Sequence[int]], config: GenerationConfig) -> int:
    from chattasks.errors import BackendError

    room = backend.max_length - max(len(r) for r in inputs)
    if room < 1:
        raise BackendError(f"no room to generate: the prompt fills max_length={backend.max_length}")
    return min(config.max_new_tokens, room)


def no_processors(jobs: Sequence[tuple[int, int]], inputs: Sequence[Sequence[int]]) -> list[Processor]:
    """Greedy decoding: no logits processor."""
    return []


class SeededSampler:
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
