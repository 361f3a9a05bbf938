"""Words of normalised text, and their n-grams hashed in bulk with numpy (for ``chattasks.contamination``).

**Normalisation** (``normalize``, ``fold``) of a whole text (a conversation's messages, or an
evaluation item's pieces, joined by newlines): Unicode NFKC, case folding, NFKC again; then
every character that is not a letter or a digit (Python's ``str.isalnum``: Unicode letters and
digits; underscore, punctuation, symbols, whitespace and combining marks are not) separates
words. ``"Hello, World!"`` and ``"hello   world"`` are both the words ``hello world``;
``"Ｆｉｒｓｔ…"`` (full-width letters, an ellipsis) is ``first``. Scripts written without spaces
(Chinese, Japanese) make one word per unbroken run, as in lm-eval's and GPT-3's decontamination.

**Hashing** (``WordBatch``): the folded texts of a batch are joined into one buffer and every word
of it is found and hashed at once: a word's 64-bit hash reads its first 8 and last 8 bytes and
its length (exact up to 16 bytes; longer words that agree on those share a hash). The key of a
gram of ``k`` words starting at word ``i`` is ``mix(sum(hash[i + j] * B**j) + k * SALT)`` modulo
2**64, computed for any ``i`` and ``k`` from one prefix sum. Equal grams always get equal keys;
unequal grams rarely do, and ``chattasks.ngram_index`` confirms every key match on the words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCH_BYTES = 1 << 18  # folded text hashed per batch: bounds the working memory (~100 bytes per word)

# byte -> byte: ASCII letters lower-cased, ASCII digits kept, any other ASCII byte a space; bytes
# >= 0x80 (the UTF-8 sequences of the non-ASCII letters and digits left by the regex) kept.
_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128) else 32
    for c in range(256)
)
_NON_ASCII_NON_WORD = re.compile(r"[^\x00-\x7f\w]")  # a non-ASCII character that is no letter or digit
_SPACE = 32  # bytes up to this one separate words (a folded text has spaces; a batch adds newlines)

_U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 2**64)
_SALT = 0xD6E8FEB86659FD93
_KEEP = np.array([(1 << (8 * i)) - 1 for i in range(9)], dtype=np.uint64)  # the low i bytes of a uint64


def fold(text: str) -> bytes:
    """``text`` normalised to UTF-8 bytes whose words are separated by one or more spaces."""
    if text.isascii():
        return text.encode("ascii").translate(_FOLD)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _NON_ASCII_NON_WORD.sub(" ", text).encode("utf-8").translate(_FOLD)


def normalize(text: str) -> str:
    """``text`` normalised (see the module docstring): its words joined by single spaces."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The words of ``text`` after normalisation."""
    return fold(text).decode("utf-8").split()


def conversation_text(conversation: dict[str, Any]) -> str:
    """The text of every message of a conversation (assistant parts too), joined by newlines."""
    pieces: list[str] = []
    for message in conversation["messages"]:
        content = message["content"]
        if isinstance(content, str):
            pieces.append(content)
        else:
            pieces.extend(part["text"] for part in content)
    return "\n".join(pieces)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array: every input bit reaches every output bit."""
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def _powers(base: int, count: int) -> np.ndarray:
    """base**0 .. base**(count - 1) modulo 2**64."""
    powers = np.full(count, base, dtype=np.uint64)
    if count:
        powers[0] = 1
    return np.multiply.accumulate(powers, out=powers)


@dataclass
class WordBatch:
    """The words of several folded texts joined into one buffer: where each is, its text, its hash."""

    data: bytes  # the texts joined by newlines (no gram crosses from one text to the next)
    starts: np.ndarray  # byte offset where each word starts
    ends: np.ndarray  # byte offset just after each word
    owner: np.ndarray  # the text each word belongs to
    hashes: np.ndarray  # uint64 hash of each word
    prefix: np.ndarray  # uint64, prefix[i] = sum(hashes[j] * B**j for j < i)
    inverse: np.ndarray  # uint64, B**-i

    @classmethod
    def from_folded(cls, texts: Sequence[bytes]) -> WordBatch:
        """A batch of texts already passed through ``fold``."""
        data = b"\n".join(texts)
        padded = data + b" " * (16 - len(data) % 8)  # whole uint64s, with one to spare past the end
        buf = np.frombuffer(padded, dtype=np.uint8)
        word = np.empty(len(buf) + 1, dtype=np.bool_)
        word[0] = False
        np.greater(buf, _SPACE, out=word[1:])
        bounds = np.flatnonzero(word[1:] != word[:-1])  # alternately where a word starts and ends
        starts, ends = bounds[0::2], bounds[1::2]
        del word, bounds
        text_ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1)
        owner = np.repeat(np.arange(len(texts)), np.diff(np.searchsorted(starts, text_ends), prepend=0))
        hashes = _word_hashes(np.frombuffer(padded, dtype="<u8"), starts, ends)
        prefix = np.zeros(len(hashes) + 1, dtype=np.uint64)
        np.cumsum(hashes * _powers(_BASE, len(hashes)), out=prefix[1:])
        return cls(data, starts, ends, owner, hashes, prefix, _powers(_BASE_INVERSE, len(hashes)))

    def __len__(self) -> int:
        return len(self.starts)

    def keys_by_length(self, first: np.ndarray, lengths: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """For each length, the keys of the grams of that length that begin at the words ``first``.

        A gram that would run past the batch's end gets a meaningless key: ``inside`` tells them.
        """
        base = self.prefix[first]
        inverse = self.inverse[first]
        for length in lengths:
            sums = self.prefix[np.minimum(first + length, len(self.hashes))] - base
            sums *= inverse
            sums += _U64(length * _SALT % 2**64)
            yield length, mix(sums)

    def keys(self, first: np.ndarray | slice, length: int) -> np.ndarray:
        """The keys of the ``length``-word grams that begin at the words ``first`` (indices or a slice)."""
        if isinstance(first, slice):
            start, stop, _ = first.indices(len(self.hashes))
            sums = self.prefix[start + length : stop + length] - self.prefix[start:stop]
        else:
            sums = self.prefix[first + length] - self.prefix[first]
        sums *= self.inverse[first]
        sums += _U64(length * _SALT % 2**64)
        return mix(sums)

    def inside(self, first: np.ndarray, length: int) -> np.ndarray:
        """Which of the grams of ``length`` words beginning at ``first`` stay inside one text."""
        last = first + (length - 1)
        fits = last < len(self.owner)
        fits[fits] = self.owner[first[fits]] == self.owner[last[fits]]
        return fits

    def gram(self, start: int, length: int) -> bytes:
        """The words ``start`` to ``start + length`` of the batch, joined by single spaces."""
        return b" ".join(self.data[self.starts[start] : self.ends[start + length - 1]].split())


def _load(words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The little-endian uint64 of the 8 bytes at each byte offset of a buffer viewed as uint64s."""
    index = offsets >> 3
    shift = (offsets & 7).astype(np.uint64) << _U64(3)
    low = words[index] >> shift
    high = words[index + 1] << _U64(1)  # in two steps: a shift by 64 would be undefined
    high <<= _U64(63) - shift
    return low | high


def _word_hashes(buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the words at buffer bytes starts[i]:ends[i] (``buffer`` as uint64s)."""
    lengths = ends - starts
    hashes = _load(buffer, starts)
    hashes &= _KEEP[np.minimum(lengths, 8)]
    hashes += lengths.astype(np.uint64) * _U64(_SALT)
    long = np.flatnonzero(lengths > 8)
    if len(long):
        hashes[long] += mix(_load(buffer, ends[long] - 8))
    return mix(hashes)
