"""A tiny real transformers model whose replies are set by its weights: for testing generation loops.

``scripted_gpt2(vocab_size, scripts)`` builds a one-block GPT-2 whose next token is decided by
(the current token, its position): the block's output projections are zero, so the last hidden
state is ``LayerNorm(wte[token] + wpe[position])``, and the output head maps the hidden state of
each scripted (token, position) to the token that should follow it. A script is ``(prefix, continuation, forced)``:
after the token ids ``prefix`` the model writes ``continuation`` token by token, except at the
indices in ``forced`` (tokens a generation loop is expected to force: the model predicts
``WRONG`` there, so a loop that samples instead of forcing is caught). The model reads every token
it is given, so what it writes after a forced token depends on the forced token having been fed.
The head is solved exactly (a pseudo-inverse): at every scripted step the scripted token's logit
is ``MARGIN`` and every other token's is 0, so scripts sharing tokens do not interfere.

It runs through every real code path (``model.forward`` with a KV cache, ``model.generate``,
``save_pretrained``/``from_pretrained``); only its weights are made by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MARGIN = 30.0
WRONG = " wrong"


def scripted_gpt2(
    vocab_size: int,
    scripts: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]],
    *,
    wrong_id: int | None = None,
    width: int = 256,
    positions: int = 512,
    seed: int = 0,
) -> Any:
    """A GPT-2 that writes each script's continuation after its prefix (see the module docstring)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_positions=positions,
        n_embd=width,
        n_layer=1,
        n_head=2,
        tie_word_embeddings=False,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        block = model.transformer.h[0]
        for projection in (block.attn.c_proj, block.mlp.c_proj):
            projection.weight.zero_()
            projection.bias.zero_()
        model.transformer.wte.weight.normal_()
        model.transformer.wpe.weight.normal_()
        aims: dict[tuple[int, int], int | None] = {}
        for prefix, continuation, forced in scripts:
            sequence = [*prefix, *continuation]
            for k, target in enumerate(continuation):
                if k in forced and wrong_id is None:
                    continue
                position = len(prefix) - 1 + k
                key = (sequence[position], position)
                aim = wrong_id if k in forced else target
                if aims.setdefault(key, aim) != aim:
                    raise ValueError(f"scripts disagree on the token after {key[0]} at position {position}")
        if len(aims) >= width:
            raise ValueError(f"{len(aims)} scripted steps need a width above {len(aims)}, got {width}")
        head = torch.zeros((vocab_size, width))
        if aims:
            tokens = torch.tensor([token for token, _ in aims])
            places = torch.tensor([position for _, position in aims])
            hidden = model.transformer.ln_f(
                model.transformer.wte.weight[tokens] + model.transformer.wpe.weight[places]
            )
            wanted = torch.zeros((vocab_size, len(aims)))
            wanted[torch.tensor(list(aims.values())), torch.arange(len(aims))] = MARGIN
            head = wanted @ torch.linalg.pinv(
                hidden.T
            )  # every scripted step: MARGIN on its token, 0 elsewhere
        model.lm_head.weight.copy_(head)
    return model


def nanochat_hf_tokenizer(tokenizer: Any, chat_template: str | None = None) -> Any:
    """A transformers tokenizer around the ``tokenizers`` one (the ``nanochat_tokenizer`` fixture)."""
    import transformers

    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    wrapped.eos_token = "<|assistant_end|>"
    wrapped.pad_token = "<|bos|>"
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


NANOCHAT_TEMPLATE = (
    "<|bos|>{% for m in messages %}{% if m['role'] == 'user' %}<|user_start|>{{ m['content'] }}<|user_end|>"
    "{% else %}<|assistant_start|>{{ m['content'] }}<|assistant_end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant_start|>{% endif %}"
)
"""nanochat's rendering as a chat template (no system turn, no tools)."""

HERMES_TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nYou may call these tools:\n<tools>\n{% for tool in tools %}"
    '{{ tool | tojson }}\n{% endfor %}</tools>\nCall one as <tool_call>{"name": ..., "arguments": {...}}'
    "</tool_call><|im_end|>\n{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'tool' %}<|im_start|>tool\n{{ m['content'] }}<|im_end|>\n"
    "{% elif m.get('tool_calls') %}<|im_start|>assistant\n{{ m['content'] }}{% for call in m['tool_calls'] %}"
    "<tool_call>{\"name\": \"{{ call['function']['name'] }}\", \"arguments\": {{ call['function']['arguments'] | tojson }}}"
    "</tool_call>{% endfor %}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A Hermes/Qwen-style chat template that takes ``tools=`` (for SmolLM2's tokenizer)."""
