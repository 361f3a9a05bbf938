"""Render + pack throughput (tokens/s) against the tokenizer's own batch encode of the same text.

Data: real SFT conversations from the local mirror -- SmolTalk-schema dialogues (multi-turn) and
GSM8K train (tool parts) -- fetched into memory first, so only rendering and packing are timed.
For each renderer:

- floor: ``tokenizers.Tokenizer.encode_batch_fast`` of the same text, one string per
  conversation (the chat template's text for the template renderer; the messages' texts joined
  for the special-token renderer);
- ours: ``renderer.render_batch`` in chunks, then ``Packer.pack`` into rows of ``--max-len``.

Prints tokens/s of both (each counting its own tokens: ours adds the special/template tokens) and
the ratio floor time / our time on the same conversations (goal: within 2x, i.e. ratio >= 0.5).

    python bench/bench_sft.py [--data-dir ../shared/data/hub] [--repeats 3] [--max-len 2048]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from chattasks.conversation import assistant_text
from chattasks.sft.pack import Packer
from chattasks.sft.special import NANOCHAT_SPECIAL_TOKENS, SpecialTokenRenderer
from chattasks.sft.template import ChatTemplateRenderer
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tasks.smoltalk import SmolTalk

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CHUNK = 512


def gpt2_with_nanochat_tokens() -> Tokenizer:
    """GPT-2's BPE (from the shared encoder.json/vocab.bpe) with nanochat's nine special tokens added."""
    folder = SHARED / "tokenizers" / "gpt2"
    tokenizer = Tokenizer(models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe")))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(NANOCHAT_SPECIAL_TOKENS))
    return tokenizer


def smollm2_with_template() -> PreTrainedTokenizerFast:
    """The SmolLM2 tokenizer (shared tokenizer.json) with SmolLM2-Instruct's chat template (test fixture)."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(SHARED / "tokenizers" / "smollm2_tokenizer.json"))
    tokenizer.chat_template = (
        REPO / "tests" / "fixtures" / "sft" / "smollm2_chat_template.jinja"
    ).read_text()
    return tokenizer


def best(seconds: list[float]) -> float:
    return min(seconds)


def time_floor(backend: Tokenizer, texts: list[str], repeats: int) -> tuple[float, int]:
    times, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        encoded = [
            backend.encode_batch_fast(texts[i : i + CHUNK], add_special_tokens=False)
            for i in range(0, len(texts), CHUNK)
        ]
        times.append(time.perf_counter() - start)
        tokens = sum(len(e.ids) for chunk in encoded for e in chunk)
    return best(times), tokens


def time_ours(renderer, conversations: list[dict], max_len: int, repeats: int) -> tuple[float, int, Packer]:
    times, packer = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        packer = Packer(max_len, renderer.pad_id)
        docs = (
            doc
            for i in range(0, len(conversations), CHUNK)
            for doc in renderer.render_batch(conversations[i : i + CHUNK])
        )
        for _batch in packer.pack(docs, batch_size=32):
            pass
        times.append(time.perf_counter() - start)
    return best(times), packer.report.tokens + packer.report.truncated_tokens, packer


def joined_text(conversation: dict) -> str:
    return "".join(
        assistant_text(m["content"]) if m["role"] == "assistant" else m["content"]
        for m in conversation["messages"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED / "hub")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=2048)
    args = parser.parse_args()

    conversations = list(SmolTalk("test", data_dir=args.data_dir)) + list(
        GSM8K("main", "train", data_dir=args.data_dir)
    )
    print(
        f"{len(conversations):,} conversations (SmolTalk-schema test + GSM8K train), max_len={args.max_len}"
    )
    print(f"{'renderer':<22}{'floor tok/s':>14}{'ours tok/s':>14}{'ratio':>8}  packing")

    special = SpecialTokenRenderer(gpt2_with_nanochat_tokens())
    floor_s, floor_tokens = time_floor(
        special.encoder.plain_backend, [joined_text(c) for c in conversations], args.repeats
    )
    ours_s, ours_tokens, packer = time_ours(special, conversations, args.max_len, args.repeats)
    report(special, floor_tokens / floor_s, ours_tokens / ours_s, floor_s / ours_s, packer)

    smollm2 = smollm2_with_template()
    template = ChatTemplateRenderer(smollm2)
    texts = [template.apply(_plain(c, template)) for c in conversations]
    floor_s, floor_tokens = time_floor(smollm2.backend_tokenizer, texts, args.repeats)
    ours_s, ours_tokens, packer = time_ours(template, conversations, args.max_len, args.repeats)
    report(template, floor_tokens / floor_s, ours_tokens / ours_s, floor_s / ours_s, packer)


def _plain(conversation: dict, renderer: ChatTemplateRenderer) -> list[dict]:
    return [
        {
            "role": m["role"],
            "content": renderer.tool_format.flatten(m["content"])
            if m["role"] == "assistant"
            else m["content"],
        }
        for m in conversation["messages"]
    ]


def report(renderer, floor: float, ours: float, ratio: float, packer: Packer) -> None:
    name = type(renderer).__name__
    print(f"{name:<22}{floor:>14,.0f}{ours:>14,.0f}{ratio:>8.2f}  {packer.report.summary()}")


if __name__ == "__main__":
    main()
