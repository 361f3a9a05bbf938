"""Shared fixtures: the real datasets in ../shared/data (tests that need them skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHATTASKS_SHARED_DATA", REPO.parent / "shared" / "data"))
HUB_DIR = SHARED_DATA / "hub"
WORDS_FILE = SHARED_DATA / "words" / "words_alpha.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True, scope="session")
def _private_arrow_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the caches of a test run out of the user's home, and point tasks at the shared word list."""
    os.environ["CHATTASKS_CACHE_DIR"] = str(tmp_path_factory.mktemp("chattasks-cache"))
    if WORDS_FILE.is_file():  # never download the word list during tests
        os.environ.setdefault("CHATTASKS_WORDS_FILE", str(WORDS_FILE))


@pytest.fixture(scope="session")
def hub_dir() -> Path:
    """The local Hub-layout mirror of the task datasets (../shared/data/hub)."""
    if not HUB_DIR.is_dir():
        pytest.skip(f"local dataset mirror not found at {HUB_DIR}")
    return HUB_DIR


@pytest.fixture(scope="session")
def words_file() -> Path:
    """The dwyl English word list (../shared/data/words/words_alpha.txt)."""
    if not WORDS_FILE.is_file():
        pytest.skip(f"word list not found at {WORDS_FILE}")
    return WORDS_FILE


@pytest.fixture
def fixtures_dir() -> Path:
    """tests/fixtures: small hand-written input files."""
    return FIXTURES
