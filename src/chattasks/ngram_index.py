"""``NGramIndex``: the word grams of a set of evaluation texts, tested against training text in bulk.

**Grams of an item**: an item of ``w >= n`` words has the ``w - n + 1`` word n-grams of its
normalised text (``chattasks.ngrams``); an item of ``0 < w < n`` words has one gram, its whole
text (GPT-3's rule for short examples); an item with no words has none. A training text holds a
gram when the gram's words appear in it consecutively.

**Layout**: one ``uint64`` per distinct (gram, item) pair, the gram's key with its low bits
replaced by the item's number, sorted; a directory of where each run of top key bits starts;
a bitmap of 8 to 16 bits per pair over the keys' top bits, which turns most absent grams away
with one memory read; the items' normalised texts, compressed. ``first_hits`` keys every n-gram
of a training batch (and, at the words that begin a short item, the grams of the short items'
lengths), looks them all up at once, and confirms each item's first match on the words, so a
hash collision can never make a false match; equal grams always have equal keys, so no match is
ever missed.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from chattasks.ngrams import BATCH_BYTES, WordBatch, fold

DEFAULT_N = 13
_U64 = np.uint64
_STARTER_BITS = 16  # log2 of the bits of the bitmap of the words that begin a short item


@dataclass(frozen=True)
class Hit:
    """A training gram whose key equals the key of a gram of an evaluation item (unconfirmed)."""

    text: int  # index of the training text in its batch
    word: int  # first word of the gram in the batch
    length: int  # words in the gram
    item: int  # the evaluation item (its number in the texts given to NGramIndex)


class _Texts:
    """The items' normalised texts, zlib-compressed in blocks of 64 (a confirmation reads one back)."""

    BLOCK = 64

    def __init__(self) -> None:
        self._blocks: list[bytes] = []
        self._open: list[bytes] = []
        self._last: tuple[int, list[bytes]] = (-1, [])

    def append(self, text: bytes) -> None:
        self._open.append(text)
        if len(self._open) == self.BLOCK:
            self._blocks.append(zlib.compress(b"\n".join(self._open), 1))
            self._open = []

    def __len__(self) -> int:
        return len(self._blocks) * self.BLOCK + len(self._open)

    def __getitem__(self, index: int) -> bytes:
        block, at = divmod(index, self.BLOCK)
        if block == len(self._blocks):
            return self._open[at]
        if self._last[0] != block:
            self._last = (block, zlib.decompress(self._blocks[block]).split(b"\n"))
        return self._last[1][at]

    @property
    def nbytes(self) -> int:
        return sum(map(len, self._blocks)) + sum(map(len, self._open))


class NGramIndex:
    """The grams of a sequence of evaluation texts (see the module docstring).

    ``max_items_per_gram``: leave out grams found in more items than that (template text, such as
    the preamble shared by MMLU's moral-scenarios questions); None keeps every gram.
    """

    def __init__(
        self,
        texts: Iterable[str],
        n: int = DEFAULT_N,
        *,
        max_items_per_gram: int | None = None,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if max_items_per_gram is not None and (
            isinstance(max_items_per_gram, bool)
            or not isinstance(max_items_per_gram, int)
            or max_items_per_gram < 1
        ):
            raise ValueError(
                f"max_items_per_gram must be an integer >= 1 or None, got {max_items_per_gram!r}"
            )
        self.n = n
        self.texts = _Texts()  # each item's words, joined by single spaces
        chunks = self._read(texts, batch_bytes)
        self._low = _U64((1 << max(1, (len(self.texts) - 1).bit_length())) - 1)  # the item's bits
        self._packed = _pack(chunks, self._low, max_items_per_gram)
        # where each run of the keys' top bits begins (4 to 8 entries a run), and a bitmap of the
        # top bits (8 to 16 bits per entry) that turns most absent grams away with one read
        self._directory_bits = max(1, len(self._packed).bit_length() - 3)
        edges = np.arange(1 << self._directory_bits, dtype=np.uint64) << _U64(64 - self._directory_bits)
        directory = np.append(np.searchsorted(self._packed, edges), len(self._packed))
        self._directory = directory.astype(np.uint32 if len(self._packed) < 2**32 else np.int64)
        del edges, directory
        self._bits = max(16, min(32, (8 * len(self._packed)).bit_length()))
        self._bitmap = _bitmap_of_top_bits(self._packed, self._bits)

    def _read(self, texts: Iterable[str], batch_bytes: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Normalise and store the texts; (keys, items) of their grams, batch by batch; short items' details."""
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        counts: list[np.ndarray] = []
        short_keys: list[np.ndarray] = []  # the keys of the short items' whole texts
        starters: list[bytes] = []  # the first words of the short items
        pending: list[bytes] = []
        size = 0
        for text in itertools.chain(texts, [None]):
            if text is not None:
                folded = b" ".join(fold(text).split())
                self.texts.append(folded)
                pending.append(folded)
                size += len(folded) + 1
            if pending and (size >= batch_bytes or text is None):
                batch = WordBatch.from_folded(pending)
                counts.append(np.bincount(batch.owner, minlength=len(pending)))
                first_item = len(self.texts) - len(pending)
                chunks.extend(self._grams(batch, counts[-1], first_item, short_keys))
                starters += [
                    t.split(b" ", 1)[0] for t, c in zip(pending, counts[-1].tolist()) if 0 < c < self.n
                ]
                pending, size = [], 0
        self.word_counts = np.concatenate(counts or [np.zeros(0, np.int64)])
        short = (self.word_counts > 0) & (self.word_counts < self.n)
        self.short_lengths = sorted(set(self.word_counts[short].tolist()))
        hashes = WordBatch.from_folded(starters).hashes if starters else np.zeros(0, _U64)
        self._starters = _bitmap_of_top_bits(hashes, _STARTER_BITS)
        # a small bitmap of the short items' keys (they are few): it stays in the CPU's cache
        keys = np.concatenate(short_keys or [np.zeros(0, _U64)])
        self._short_bits = max(12, min(24, (64 * len(keys)).bit_length()))
        self._short_bitmap = _bitmap_of_top_bits(keys, self._short_bits)
        return chunks

    def _grams(
        self, batch: WordBatch, counts: np.ndarray, first_item: int, short_keys: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(keys, items as uint32) of a batch's n-grams and of its short texts' whole texts."""
        first_words = np.cumsum(counts) - counts
        first = np.arange(max(len(batch) - self.n + 1, 0))
        first = first[batch.inside(first, self.n)]
        out = [(batch.keys(first, self.n), (batch.owner[first] + first_item).astype(np.uint32))]
        short = np.flatnonzero((counts > 0) & (counts < self.n))
        for k in np.unique(counts[short]).tolist():
            of_length = short[counts[short] == k]
            keys = batch.keys(first_words[of_length], k)
            short_keys.append(keys)
            out.append((keys, (of_length + first_item).astype(np.uint32)))
        return out

    @property
    def items(self) -> int:
        """The number of evaluation texts."""
        return len(self.texts)

    def __len__(self) -> int:
        """The number of (gram, item) pairs held."""
        return len(self._packed)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index: its arrays and the normalised texts."""
        arrays = (
            self._packed,
            self._directory,
            self._bitmap,
            self._starters,
            self._short_bitmap,
            self.word_counts,
        )
        return sum(a.nbytes for a in arrays) + self.texts.nbytes

    def first_hits(self, batch: WordBatch, done: np.ndarray | None = None) -> list[tuple[Hit, bytes]]:
        """For each item with a gram in the batch: its first hit (in batch order) and the shared gram.

        ``done``: a boolean array over the items; items marked True are left out.
        """
        word, length, item = self._candidates(batch, done)
        found = []
        while len(item):
            _, first = np.unique(item, return_index=True)  # each item's first candidate
            columns = (batch.owner[word[first]], word[first], length[first], item[first])
            failed = []
            for at, hit in zip(first.tolist(), (Hit(*row) for row in zip(*(c.tolist() for c in columns)))):
                gram = self.confirm(batch, hit)
                if gram is None:  # keys agreed by chance: the item's next candidate is tried
                    failed.append(at)
                else:
                    found.append((hit, gram))
            retry = np.isin(item, item[failed])
            retry[failed] = False
            word, length, item = word[retry], length[retry], item[retry]
        return sorted(found, key=lambda pair: pair[0].item)

    def _candidates(self, batch: WordBatch, done: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """(first word, length, item) of every training gram whose key agrees with one of an item's
        grams, sorted by word, then length, then item."""
        count = max(len(batch) - self.n + 1, 0)
        keys = batch.keys(slice(0, count), self.n)
        looked = [(self.n, *self._lookup(keys, self._bitmap, self._bits))]
        if self.short_lengths:
            starts = np.flatnonzero(_has_bit(self._starters, batch.hashes >> _U64(64 - _STARTER_BITS)))
            for k, keys in batch.keys_by_length(starts, self.short_lengths):
                position, item = self._lookup(keys, self._short_bitmap, self._short_bits)
                looked.append((k, starts[position], item))
        found = []
        for k, word, item in looked:
            keep = batch.inside(word, k)
            if done is not None:
                keep &= ~done[item]
            found.append((word[keep], np.full(int(keep.sum()), k), item[keep]))
        word, length, item = (np.concatenate(column) for column in zip(*found))
        order = np.lexsort((item, length, word))
        return word[order], length[order], item[order]

    def _lookup(self, keys: np.ndarray, bitmap: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``keys``, item) of every entry whose key agrees with one of ``keys``;
        ``bitmap`` holds the top ``bits`` bits of every key that can agree."""
        maybe = np.flatnonzero(_has_bit(bitmap, keys >> _U64(64 - bits)))
        probe = keys[maybe] & ~self._low
        bucket = probe >> _U64(64 - self._directory_bits)
        low = self._directory[bucket].astype(np.int64)
        sizes = self._directory[bucket + _U64(1)] - low
        entry = np.repeat(low - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum())
        position = np.repeat(maybe, sizes)
        equal = (self._packed[entry] & ~self._low) == np.repeat(probe, sizes)
        return position[equal], (self._packed[entry[equal]] & self._low).astype(np.int64)

    def confirm(self, batch: WordBatch, hit: Hit) -> bytes | None:
        """The shared gram's text when the training gram of ``hit`` really is a gram of its item, else None."""
        count = int(self.word_counts[hit.item])
        if hit.length != (self.n if count >= self.n else count):
            return None
        gram = batch.gram(hit.word, hit.length)
        return gram if b" " + gram + b" " in b" " + self.texts[hit.item] + b" " else None


def _pack(
    chunks: list[tuple[np.ndarray, np.ndarray]], low: np.uint64, max_items_per_gram: int | None
) -> np.ndarray:
    """One sorted uint64 per distinct (gram, item): the key's top bits, then the item in the ``low`` bits."""
    parts = []
    while chunks:  # in place (the short items' bitmap is built already), so that the items can go
        keys, items = chunks.pop(0)
        keys &= ~low
        keys |= items
        parts.append(keys)
        del items
    packed = np.empty(sum(map(len, parts)), dtype=np.uint64)
    at = 0
    while parts:
        keys = parts.pop(0)
        packed[at : at + len(keys)] = keys
        at += len(keys)
    packed.sort()
    packed = packed[_run_starts(packed)]
    if max_items_per_gram is not None:
        sizes = np.diff(np.append(np.flatnonzero(_run_starts(packed & ~low)), len(packed)))
        packed = packed[np.repeat(sizes <= max_items_per_gram, sizes)]
    return packed


def _run_starts(values: np.ndarray) -> np.ndarray:
    """A boolean mask of the values (sorted) that differ from the one before."""
    mask = np.ones(len(values), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=mask[1:])
    return mask


def _bitmap_of_top_bits(values: np.ndarray, bits: int, chunk: int = 1 << 16) -> np.ndarray:
    """A uint8 bitmap of ``2**bits`` bits in which bit ``v >> (64 - bits)`` is set for each value ``v``."""
    bitmap = np.zeros(1 << max(bits - 3, 0), dtype=np.uint8)
    for begin in range(0, len(values), chunk):  # in chunks: the temporaries stay small
        part = values[begin : begin + chunk] >> _U64(64 - bits)
        low = (part & _U64(7)).astype(np.uint8)
        for bit in range(8):
            bitmap[part[low == bit] >> _U64(3)] |= np.uint8(1 << bit)
    return bitmap


def _has_bit(bitmap: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Whether the bits numbered ``slots`` (uint64) of a uint8 bitmap are set (a uint8 0/1 array)."""
    return (bitmap[slots >> _U64(3)] >> (slots & _U64(7)).astype(np.uint8)) & np.uint8(1)
