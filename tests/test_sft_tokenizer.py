"""Loading tokenizers by name, and one encoding interface over every tokenizer kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import SMOLLM2_TOKENIZER, require

from chattasks.errors import BackendError
from chattasks.sft.tokenizer import TextEncoder, load_tokenizer

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "sft" / "smollm2_chat_template.jinja"


@pytest.fixture(scope="module")
def backend(nanochat_tokenizer):
    return nanochat_tokenizer


TEXT = "Count the r's in 'strawberry' <|assistant_end|> and café 東京"


class NanochatStyle:
    """The methods nanochat's own tokenizer classes offer (encode lists, encode_special, decode)."""

    def __init__(self, backend):
        self.backend = backend
        self.plain = TextEncoder(backend)

    def encode(self, texts):
        return self.plain.encode_batch(texts)

    def encode_special(self, token):
        return self.backend.token_to_id(token)

    def decode(self, ids):
        return self.backend.decode(ids, skip_special_tokens=False)


def test_every_kind_encodes_text_the_same_and_never_as_special_tokens(backend):
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=backend)
    encoders = [TextEncoder(backend), TextEncoder(wrapped), TextEncoder(NanochatStyle(backend))]
    assert [e.kind for e in encoders] == ["tokenizers", "tokenizers", "nanochat"]
    results = [e.encode_batch([TEXT, ""]) for e in encoders]
    assert results[0] == results[1] == results[2]
    ids = results[0][0]
    assert backend.token_to_id("<|assistant_end|>") not in ids
    assert encoders[0].decode(ids) == TEXT
    for encoder in encoders:
        assert encoder.token_id("<|assistant_end|>") == backend.token_to_id("<|assistant_end|>")
        assert encoder.token_id("<|no_such_token|>") is None


def test_the_callers_tokenizer_is_left_untouched(backend):
    TextEncoder(backend).encode_batch([TEXT])
    assert backend.token_to_id("<|assistant_end|>") in backend.encode(TEXT, add_special_tokens=False).ids


def test_unsupported_tokenizers_are_refused():
    with pytest.raises(BackendError, match="unsupported tokenizer type int"):
        TextEncoder(3)


def test_load_tokenizer_reads_a_tokenizer_json_and_a_template_file():
    path = require(SMOLLM2_TOKENIZER, "SmolLM2 tokenizer")
    tokenizer = load_tokenizer(path, chat_template=TEMPLATE)
    assert tokenizer.chat_template == TEMPLATE.read_text()
    assert load_tokenizer(str(path), chat_template="{{ messages }}").chat_template == "{{ messages }}"


def test_load_tokenizer_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "nope.json")
