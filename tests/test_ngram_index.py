"""NGramIndex: the first training text holding a gram of each item, checked against brute force."""

from __future__ import annotations

import random

import numpy as np
import pytest

from chattasks.ngram_index import Hit, NGramIndex
from chattasks.ngrams import WordBatch, fold, words


def brute_force(items: list[str], training: list[str], n: int) -> dict[int, tuple[int, str]]:
    """For each item, the first training text holding one of its grams and the earliest such gram."""
    texts = [words(text) for text in training]
    found = {}
    for number, item in enumerate(items):
        w = words(item)
        grams = (
            {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}
            if len(w) >= n
            else {tuple(w)}
            if w
            else set()
        )
        for row, text in enumerate(texts):
            hits = [
                (start, len(g))
                for g in grams
                for start in range(len(text) - len(g) + 1)
                if tuple(text[start : start + len(g)]) == g
            ]
            if hits:
                start, length = min(hits)
                found[number] = (row, " ".join(text[start : start + length]))
                break
    return found


def scan(index: NGramIndex, training: list[str], batch_rows: int) -> dict[int, tuple[int, str]]:
    """What chattasks.contamination does with an index: first confirmed hit per item, in row order."""
    found: dict[int, tuple[int, str]] = {}
    done = np.zeros(index.items, dtype=bool)
    for begin in range(0, len(training), batch_rows):
        batch = WordBatch.from_folded([fold(text) for text in training[begin : begin + batch_rows]])
        for hit, gram in index.first_hits(batch, done):
            assert not done[hit.item] and hit.item not in found
            done[hit.item] = True
            found[hit.item] = (begin + hit.text, gram.decode())
    return found


VOCABULARY = [
    "a", "bb", "Cc", "dd,", "abcdefgh", "abcdefghi", "internationalization", "internationalizatiom",
    "Straße", "strasse", "é", "e\u0301", "x_y", "日本語", "12", "1.2",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_same_first_matches_as_brute_force(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 4, 6])
    items = [" ".join(rng.choices(VOCABULARY, k=rng.randint(0, 9))) for _ in range(150)]
    training = [" ".join(rng.choices(VOCABULARY, k=rng.randint(0, 40))) for _ in range(120)]
    index = NGramIndex(items, n, batch_bytes=rng.choice([1, 200, 1 << 18]))
    expected = brute_force(items, training, n)
    assert 0 < len(expected) < len(items)
    assert scan(index, training, rng.choice([1, 7, 1000])) == expected


def test_an_item_shorter_than_n_needs_its_whole_text():
    index = NGramIndex(["alpha beta gamma", "one two three four five six"], n=5)
    assert index.short_lengths == [3]
    training = ["x alpha beta y gamma", "alpha beta gamma, delta", "one two three four five"]
    assert scan(index, training, 10) == {0: (1, "alpha beta gamma"), 1: (2, "one two three four five")}


def test_items_without_words_never_match():
    index = NGramIndex(["", "?!", "real words here"], n=2)
    assert index.word_counts.tolist() == [0, 0, 3]
    assert scan(index, ["", "...", "words here"], 10) == {2: (2, "words here")}


def test_a_hash_collision_is_confirmed_away():
    # words over 16 bytes that agree on their first 8 bytes, last 8 bytes and length share a hash
    real, forged = "internationalization", "internatXXXXlization"
    index = NGramIndex([f"the {real} of the test", "other item"], n=3)
    batch = WordBatch.from_folded([fold(f"the {forged} of"), fold(f"the {real} of")])
    word, length, item = index._candidates(batch, None)
    assert item.tolist() == [0, 0] and batch.owner[word].tolist() == [0, 1]  # both keys agree
    (hit, gram), *more = index.first_hits(batch)
    assert not more and (hit.text, gram) == (1, f"the {real} of".encode())
    assert index.confirm(batch, Hit(0, 0, 3, 0)) is None
    only_forged = WordBatch.from_folded([fold(f"the {forged} of")])
    assert index.first_hits(only_forged) == []


def test_done_items_are_skipped():
    index = NGramIndex(["a b c", "b c d"], n=2)
    batch = WordBatch.from_folded([fold("a b c d")])
    assert [hit.item for hit, _ in index.first_hits(batch)] == [0, 1]
    assert [hit.item for hit, _ in index.first_hits(batch, np.array([True, False]))] == [1]


def test_max_items_per_gram_drops_template_text():
    template = "for which of these two scenarios does the main character"
    items = [f"{template} scenario {i}" for i in range(5)] + ["something else entirely here now"]
    training = [template, "something else entirely here"]
    assert scan(NGramIndex(items, n=4), training, 10).keys() == {0, 1, 2, 3, 4, 5}
    assert scan(NGramIndex(items, n=4, max_items_per_gram=4), training, 10) == {
        5: (1, "something else entirely here")
    }


def test_duplicate_grams_of_one_item_are_held_once():
    index = NGramIndex(["a b c a b c"], n=2)
    assert len(index) == 3  # "a b", "b c", "c a"


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_n_is_refused(bad):
    with pytest.raises(ValueError, match="n must be"):
        NGramIndex(["x"], n=bad)
    with pytest.raises(ValueError, match="max_items_per_gram"):
        NGramIndex(["x"], max_items_per_gram=bad)


def test_no_items_or_no_words_match_nothing():
    for items in ([], ["", "..."]):
        index = NGramIndex(items, n=3)
        assert len(index) == 0 and index.items == len(items)
        assert index.first_hits(WordBatch.from_folded([fold("a b c d"), b""])) == []
