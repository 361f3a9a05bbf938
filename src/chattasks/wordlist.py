"""The English word list SpellingBee and SimpleSpelling draw from (dwyl ``words_alpha.txt``).

https://github.com/dwyl/english-words -- 370K lowercase words, one per line. The list is found,
in this order: an explicit ``words_path``, ``$CHATTASKS_WORDS_FILE``, a cached copy in
``$CHATTASKS_CACHE_DIR/words_alpha.txt`` (default ``~/.cache/chattasks``), and only then a
download into that cache. It is read once per process and kept as one byte blob plus offsets.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chattasks.data import cache_dir
from chattasks.errors import DataError, DatasetNotFound

WORDS_URL = "https://raw.githubusercontent.com/dwyl/english-words/refs/heads/master/words_alpha.txt"
WORDS_ENV = "CHATTASKS_WORDS_FILE"


class WordList(Sequence[str]):
    """Words kept compactly: one UTF-8 blob and an offsets array (about 7 MB for 370K words).

    ``order`` (a permutation of the rows) makes a shuffled view that shares the blob.
    """

    def __init__(self, words: Iterable[str], order: np.ndarray | None = None) -> None:
        blob = "\n".join(words).encode()
        self._blob = blob
        ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10)
        self._starts = np.concatenate([[0], ends + 1]).astype(np.int64)
        self._ends = np.concatenate([ends, [len(blob)]]).astype(np.int64)
        self.order = order

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordList:
        """One word per line; surrounding whitespace (and CR of CRLF files) stripped, blank lines skipped."""
        text = Path(path).read_text(encoding="utf-8")
        words = cls(word for line in text.split("\n") if (word := line.strip()))
        if not words:
            raise DataError(f"word list {path} holds no words")
        return words

    def shuffled(self, seed: int) -> WordList:
        """A view in the order ``random.Random(seed).shuffle`` leaves a list of these words in."""
        order = list(range(len(self._starts)))
        random.Random(seed).shuffle(order)
        view = WordList.__new__(WordList)
        view._blob, view._starts, view._ends = self._blob, self._starts, self._ends
        view.order = np.array(order, dtype=np.int32)
        return view

    def __len__(self) -> int:
        return len(self._starts) if self._blob else 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"word {index} out of range for a list of {len(self)}")
        row = int(self.order[index]) if self.order is not None else index
        return self._blob[self._starts[row] : self._ends[row]].decode()


def words_file(words_path: str | os.PathLike[str] | None = None) -> Path:
    """Where the word list is (see the module docstring for the order); downloads it as a last resort."""
    for value, what in ((words_path, "words_path"), (os.environ.get(WORDS_ENV) or None, f"${WORDS_ENV}")):
        if value is not None:
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"word list given by {what} not found: {path}")
            return path
    cached = cache_dir() / "words_alpha.txt"
    return cached if cached.is_file() else download_words(cached)


def download_words(dest: Path, url: str = WORDS_URL, *, transport: Any = None) -> Path:
    """Download the word list to ``dest`` (atomically); DatasetNotFound naming the env var on failure."""
    import httpx

    try:
        with httpx.Client(transport=transport, follow_redirects=True, timeout=60) as client:
            response = client.get(url)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DatasetNotFound(
            f"word list not available offline and its download from {url} failed ({exc}); "
            f"set ${WORDS_ENV} to a copy of words_alpha.txt or pass words_path="
        ) from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    partial.write_bytes(response.content)
    os.replace(partial, dest)
    return dest


_loaded: dict[tuple[str, int | None], WordList] = {}  # (resolved path, shuffle seed) -> words, per process


def load_words(words_path: str | os.PathLike[str] | None = None, shuffle_seed: int | None = None) -> WordList:
    """The word list, read once per process (and per shuffle seed)."""
    path = str(words_file(words_path).resolve())
    if (path, shuffle_seed) not in _loaded:
        words = _loaded.get((path, None)) or WordList.from_file(path)
        _loaded[path, None] = words
        _loaded[path, shuffle_seed] = words if shuffle_seed is None else words.shuffled(shuffle_seed)
    return _loaded[path, shuffle_seed]
