"""Shared fixtures: the real datasets in ../shared/data (skip when absent, fail under CI=true: shared_data.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shared_data import HUB_DIR, SMOLLM2_TOKENIZER, TOKENIZERS, WORDS_FILE, require

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SMOLLM2_TEMPLATE = FIXTURES / "sft" / "smollm2_chat_template.jinja"


@pytest.fixture(autouse=True, scope="session")
def _private_arrow_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the caches of a test run out of the user's home, and point tasks at the shared word list."""
    os.environ["CHATTASKS_CACHE_DIR"] = str(tmp_path_factory.mktemp("chattasks-cache"))
    if WORDS_FILE.is_file():  # never download the word list during tests
        os.environ.setdefault("CHATTASKS_WORDS_FILE", str(WORDS_FILE))


@pytest.fixture(scope="session")
def hub_dir() -> Path:
    """The local Hub-layout mirror of the task datasets (../shared/data/hub)."""
    return require(HUB_DIR, "local dataset mirror")


@pytest.fixture(scope="session")
def words_file() -> Path:
    """The dwyl English word list (../shared/data/words/words_alpha.txt)."""
    return require(WORDS_FILE, "word list")


@pytest.fixture
def fixtures_dir() -> Path:
    """tests/fixtures: small hand-written input files."""
    return FIXTURES


@pytest.fixture(scope="session")
def nanochat_tokenizer():
    """GPT-2's BPE (../shared/data/tokenizers/gpt2) with nanochat's special tokens added."""
    tokenizers = pytest.importorskip("tokenizers")
    from chattasks.sft.special import NANOCHAT_SPECIAL_TOKENS

    folder = require(TOKENIZERS / "gpt2", "GPT-2 tokenizer files")
    tokenizer = tokenizers.Tokenizer(
        tokenizers.models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe"))
    )
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    tokenizer.add_special_tokens(list(NANOCHAT_SPECIAL_TOKENS))
    return tokenizer


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The SmolLM2 tokenizer (../shared/data/tokenizers/smollm2_tokenizer.json) with its chat template."""
    transformers = pytest.importorskip("transformers")
    path = require(SMOLLM2_TOKENIZER, "SmolLM2 tokenizer")
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    tokenizer.chat_template = SMOLLM2_TEMPLATE.read_text()
    return tokenizer


@pytest.fixture
def memory_tasks():
    """The in-memory ARC, MMLU and GSM8K tasks registered as mem-ARC, mem-MMLU, mem-GSM8K."""
    import memory_tasks as tasks

    tasks.register()
    yield tasks.NAMES
    tasks.unregister()
