"""Normalisation into words, and the bulk word hashes and gram keys of chattasks.ngrams."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from chattasks.ngrams import WordBatch, conversation_text, fold, normalize, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  hello\t\n  WORLD  ", "hello world"),
        ("don't stop-me_now", "don t stop me now"),
        ("x=1; y=(2*3)", "x 1 y 2 3"),
        ("Ｆｉｒｓｔ…", "first"),  # full-width letters and an ellipsis (NFKC)
        ("ﬁne ligature", "fine ligature"),  # the "fi" ligature (NFKC)
        ("Straße STRASSE", "strasse strasse"),  # case folding, not just lower()
        ("cafe\u0301 café", "café café"),  # a combining accent composes (NFKC)
        ("“smart” quotes — and\u00a0non-breaking spaces", "smart quotes and non breaking spaces"),
        ("日本語のテキスト。次", "日本語のテキスト 次"),  # no spaces inside: one word per run
        ("ΑΒΓ αβγ", "αβγ αβγ"),
        ("x² ½", "x2 1 2"),  # NFKC: superscript two, the fraction slash separates
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected
    assert words(text) == expected.split()
    assert fold(text).decode().split() == expected.split()


def test_normalize_is_idempotent_on_random_unicode():
    rng = random.Random(0)
    alphabet = "aZ9 _-,.!é\u0301ßﬁＡ½²日本\u00a0\u2014\u201cΣς"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        once = normalize(text)
        assert normalize(once) == once
        assert all(ch.isalnum() for word in once.split() for ch in word)


def test_ascii_and_unicode_paths_agree_on_ascii_words():
    ascii_text = "The QUICK brown_fox, (jumps) over 13 lazy dogs!"
    assert fold(ascii_text + " é").split()[:-1] == fold(ascii_text).split()


def test_conversation_text_joins_messages_and_parts():
    conversation = {
        "messages": [
            {"role": "user", "content": "What is 2+3?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "It is "},
                    {"type": "python", "text": "2+3"},
                    {"type": "python_output", "text": "5"},
                    {"type": "text", "text": "5."},
                ],
            },
        ]
    }
    assert conversation_text(conversation) == "What is 2+3?\nIt is \n2+3\n5\n5."
    assert words(conversation_text(conversation)) == "what is 2 3 it is 2 3 5 5".split()


def _batch(texts):
    return WordBatch.from_folded([fold(text) for text in texts])


def test_words_are_found_with_their_owner():
    batch = _batch(["Hello, world", "", "one", "  two   three  "])
    assert [batch.data[s:e] for s, e in zip(batch.starts, batch.ends)] == [
        b"hello",
        b"world",
        b"one",
        b"two",
        b"three",
    ]
    assert batch.owner.tolist() == [0, 0, 2, 3, 3]
    assert batch.gram(2, 3) == b"one two three"


def test_word_hashes_depend_only_on_the_word():
    vocabulary = [
        "a",
        "ab",
        "ba",
        "abcdefgh",
        "abcdefghi",
        "abcdefghij" * 3,
        "é",
        "日本語",
        "12345678901234567",
    ]
    texts = [" ".join(random.Random(seed).choices(vocabulary, k=40)) for seed in range(5)]
    batch = _batch(texts)
    seen: dict[bytes, int] = {}
    for start, end, value in zip(batch.starts, batch.ends, batch.hashes.tolist()):
        assert seen.setdefault(batch.data[start:end], value) == value
    assert len(set(seen.values())) == len(seen)


def test_words_up_to_16_bytes_never_share_a_hash():
    letters = "ab"
    vocabulary = [
        "".join(p)
        for size in (1, 2, 3, 7, 8, 9, 15, 16)
        for p in itertools.product(letters, repeat=min(size, 10))
    ]
    vocabulary = sorted({word.ljust(size, "c") for word in vocabulary for size in (len(word), 16)})
    batch = _batch([" ".join(vocabulary)])
    assert len(set(batch.hashes.tolist())) == len(vocabulary)


def test_equal_grams_get_equal_keys_anywhere_and_lengths_are_told_apart():
    base = "w1 w2 w3 w4 w5"
    batch = _batch(["x " + base, "y y " + base + " z", base])
    starts = np.array([1, 6 + 2, 6 + 8])  # where "w1" is in each text
    assert [batch.data[batch.starts[i] : batch.ends[i]] for i in starts] == [b"w1"] * 3
    for length in (1, 3, 5):
        keys = batch.keys(starts, length)
        assert len(set(keys.tolist())) == 1
    assert batch.keys(starts[:1], 2)[0] != batch.keys(starts[:1], 3)[0]
    everything = batch.keys(slice(0, len(batch) - 4), 5)
    assert everything[starts[0]] == batch.keys(starts[:1], 5)[0]


def test_grams_never_cross_two_texts():
    batch = _batch(["a b", "c d"])
    assert batch.inside(np.arange(3), 2).tolist() == [True, False, True]
    assert batch.inside(np.array([3]), 2).tolist() == [False]  # runs past the end
