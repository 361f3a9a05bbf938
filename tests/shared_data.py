"""Where the tests find the real datasets, and what happens when they are missing.

The data lives in ``../shared/data`` beside the repository, or in ``$CHATTASKS_SHARED_DATA``.
A test that needs a missing file or folder skips on a user's machine, but FAILS when the
environment says ``CI=true``: CI must run the whole suite, never silently a part of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHATTASKS_SHARED_DATA", REPO.parent / "shared" / "data"))
HUB_DIR = SHARED_DATA / "hub"
WORDS_FILE = SHARED_DATA / "words" / "words_alpha.txt"
TOKENIZERS = SHARED_DATA / "tokenizers"
SMOLLM2_TOKENIZER = TOKENIZERS / "smollm2_tokenizer.json"


def under_ci() -> bool:
    """Whether the tests run under CI (``$CI`` set to true, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; else skip the test, or fail it under CI, naming what is missing and where."""
    if path.exists():
        return path
    message = f"{what} not found at {path} (the shared data: ../shared/data or $CHATTASKS_SHARED_DATA)"
    if under_ci():
        pytest.fail(
            f"{message}; CI=true needs the real datasets, so this is a failure, not a skip", pytrace=False
        )
    pytest.skip(message)
