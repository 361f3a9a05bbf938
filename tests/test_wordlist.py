"""The word list: found offline first, downloaded only as a last resort, read once, kept compact."""

from __future__ import annotations

import os
import random

import httpx
import pytest

from chattasks import DataError, DatasetNotFound, wordlist
from chattasks.wordlist import WORDS_ENV, WordList, download_words, load_words, words_file


@pytest.fixture
def small_words(fixtures_dir):
    return fixtures_dir / "spellingbee" / "words.txt"


def test_word_list_strips_crlf_and_blank_lines(small_words):
    words = WordList.from_file(small_words)
    assert list(words) == ["apple", "banana", "cherry", "don't", "naïve", "strawberry"]
    assert words[-1] == "strawberry" and words[1:3] == ["banana", "cherry"]
    expected = list(words)
    random.Random(42).shuffle(expected)
    assert list(words.shuffled(42)) == expected  # nanochat's SimpleSpelling order


def test_an_empty_word_list_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(DataError, match="holds no words"):
        WordList.from_file(tmp_path / "empty.txt")


def test_words_are_loaded_once_per_process(small_words):
    assert load_words(small_words) is load_words(small_words)
    assert load_words(small_words, 42) is load_words(small_words, 42)


def test_word_list_resolution_order(tmp_path, monkeypatch, small_words):
    monkeypatch.setenv("CHATTASKS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(WORDS_ENV, raising=False)
    downloads = []
    monkeypatch.setattr(wordlist, "download_words", lambda dest: downloads.append(dest) or dest)
    assert words_file() == tmp_path / "cache" / "words_alpha.txt" and len(downloads) == 1  # last resort
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "words_alpha.txt").write_text("cached\n")
    assert words_file() == tmp_path / "cache" / "words_alpha.txt" and len(downloads) == 1  # cache
    monkeypatch.setenv(WORDS_ENV, str(small_words))
    assert words_file() == small_words  # the env var beats the cache
    assert (
        words_file(tmp_path / "cache" / "words_alpha.txt").name == "words_alpha.txt"
    )  # the argument beats all
    with pytest.raises(FileNotFoundError, match="words_path"):
        words_file(tmp_path / "missing.txt")
    monkeypatch.setenv(WORDS_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match=WORDS_ENV):
        words_file()


def test_download_writes_the_cache_file(tmp_path):
    def serve(request):
        assert request.url.host == "raw.githubusercontent.com"
        return httpx.Response(200, content=b"alpha\r\nbeta\r\n")

    dest = download_words(tmp_path / "c" / "words_alpha.txt", transport=httpx.MockTransport(serve))
    assert list(WordList.from_file(dest)) == ["alpha", "beta"] and os.listdir(dest.parent) == [dest.name]


def test_offline_download_names_the_env_var(tmp_path):
    def offline(request):
        raise httpx.ConnectError("no network", request=request)

    with pytest.raises(DatasetNotFound, match=WORDS_ENV):
        download_words(tmp_path / "words_alpha.txt", transport=httpx.MockTransport(offline))
    with pytest.raises(DatasetNotFound, match="404"):
        download_words(tmp_path / "w.txt", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    assert not list(tmp_path.iterdir())
