"""Deterministic models shared by the 0.1.0 compatibility fixtures (tests/fixtures/runs-0.1.0) and their test.

Only the standard library and the Backend vocabulary of 0.1.0 are used, so that the fixtures'
generator (``tests/fixtures/runs-0.1.0/make_runs.py``) can run them under chattasks 0.1.0.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def model(messages: list[dict[str, Any]]) -> str:
    """A reply fixed by the prompt's hash: a letter, a sentence naming one, a number, or nothing usable."""
    text = messages[-1]["content"]
    d = _digest(text)
    if text.startswith("Multiple Choice question:"):
        letters = [line.rsplit("=", 1)[1] for line in text.splitlines() if line.startswith("- ")]
        letter = letters[d[0] % len(letters)]
        return ["The answer is " + letter, letter, "no idea"][d[1] % 3]
    return [f"so #### {d[0] % 40 + 10}", "I cannot tell", f"#### {d[0] % 60}"][d[1] % 3]


class Scored:
    """A backend with hash-made letter scores (some -inf) and log-likelihoods, text from ``model``."""

    name = "scored"

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "hash-scores"}

    def letter_scores(self, prompts, letters):  # type: ignore[no-untyped-def]
        from chattasks.eval.backends.base import LetterScores

        out = []
        for prompt, candidates in zip(prompts, letters):
            d = _digest(prompt[-1]["content"])
            scores = {
                letter: -float(d[i] % 7) - (float("inf") if d[i] % 11 == 0 else 0.0)
                for i, letter in enumerate(candidates)
            }
            out.append(LetterScores(scores, "logits"))
        return out

    def loglikelihoods(self, contexts, continuations):  # type: ignore[no-untyped-def]
        return [
            [(-len(x) * 0.37 - _digest(c + x)[0] / 50, 2) for x in options]
            for c, options in zip(contexts, continuations)
        ]

    def generate(self, prompts, config):  # type: ignore[no-untyped-def]
        return [[model(p) for _ in range(config.num_samples)] for p in prompts]

    def close(self) -> None:
        pass


RUNS = {
    # name: (model kind, tasks, evaluate_model keyword arguments)
    "generate": ("function", ["mem-ARC", "mem-MMLU", "mem-GSM8K"], {"limit": 12, "mc_scorer": "generate"}),
    "letter": ("scored", ["mem-ARC", "mem-MMLU"], {"limit": 12}),
    "loglik": ("scored", ["mem-ARC", "mem-MMLU"], {"limit": 12, "mc_scorer": "loglik"}),
    "sampled": ("scored", ["mem-GSM8K"], {"limit": 6, "ks": (1, 2), "sampled": True}),
}
