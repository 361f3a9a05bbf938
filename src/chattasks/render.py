"""Prompt rendering shared by the multiple-choice tasks."""

from __future__ import annotations

from collections.abc import Sequence


def render_mc(question: str, letters: Sequence[str], choices: Sequence[str]) -> str:
    """Render a multiple-choice question the way nanochat does.

    Each choice is followed by ``=`` and its letter, with no space before the letter, so the
    prompt's letter token is the same token the assistant answers with (this matters to small
    models, whose tokenizers give ``"A"`` and ``" A"`` different ids).
    """
    if len(letters) != len(choices):
        raise ValueError(f"render_mc: {len(letters)} letters {list(letters)!r} for {len(choices)} choices")
    lines = [f"Multiple Choice question: {question}\n"]
    lines.extend(f"- {choice}={letter}\n" for letter, choice in zip(letters, choices))
    lines.append("\nRespond only with the letter of the correct answer.")
    return "".join(lines)
