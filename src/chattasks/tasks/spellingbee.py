"""SpellingBee (count a letter in a word) and SimpleSpelling (spell a word), generated from a word list.

Word list: dwyl ``words_alpha.txt`` -- https://github.com/dwyl/english-words (370K lowercase English
words, Unlicense). It is not shipped: ``chattasks.wordlist`` finds it (``words_path=``,
``$CHATTASKS_WORDS_FILE``, the cache, and only then a download).

Seeding: example ``i`` of a split is built by ``random.Random(example_seed(split, i))`` with
``seed = (2 * (i // 10_000_000) + s) * 10_000_000 + i % 10_000_000`` (``s`` 0 for train, 1 for test).
Below ten million that is nanochat's rule (train ``i``, test ``10_000_000 + i``); above, the blocks
alternate, so no train seed is ever a test seed. The random draws are nanochat's, one for one, so a
given word list yields nanochat's word, letter, casing, quoting and question mark for each seed;
only the wording of the phrasings and of the assistant's prose is ours. SpellingBee train example 0
(with the 370,099-word list of 2019) becomes::

    {"messages": [
        {"role": "user", "content": "how many \\"s\\" does the word 'nonclastic' contain?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "We need to count the letter 's' in 'nonclastic'. I will do it by hand first."
                                     "\\n\\nSpelled out, the word is:\\nnonclastic:n,o,n,c,l,a,s,t,i,c\\n\\n"
                                     "Going through it letter by letter:\\n1:n\\n2:o\\n...7:s match, count=1"
                                     "\\n8:t\\n9:i\\n10:c\\n\\nBy hand I get 1."},
            {"type": "text", "text": "\\n\\nLet me confirm that with Python:\\n\\n"},
            {"type": "python", "text": "'nonclastic'.count('s')"},
            {"type": "python_output", "text": "1"},
            {"type": "text", "text": "\\n\\nPython agrees: 1.\\n\\nFinal answer:\\n\\n#### 1"}]}]}

SimpleSpelling train example 0 is user ``Spell the word: wombats``, assistant ``wombats:w,o,m,b,a,t,s``;
it draws from the list shuffled by ``random.Random(42)``, as nanochat does. Both tasks are graded
(``evaluate``): SpellingBee on the ``#### N`` number with GSM8K's extractor, SimpleSpelling on an
exact spelling.
"""

from __future__ import annotations

import random
import string
from typing import Any

import numpy as np

from chattasks.conversation import assistant_text
from chattasks.task import Conversation, Task
from chattasks.tasks.gsm8k import FinalNumberTask
from chattasks.wordlist import load_words

SPLITS = ("train", "test")
SEED_BLOCK = 10_000_000  # more than the words in the list, as in nanochat
SIMPLE_SHUFFLE_SEED = 42  # SimpleSpelling's word order (nanochat's)
LETTERS = string.ascii_lowercase

# {l} is the letter, {w} the word. Per language as many phrasings as nanochat has (30 English, then
# 4 es, 4 zh, 4 ko, 3 fr, 3 de, 3 ja: 51), so that every later random draw stays aligned with it.
PHRASINGS = tuple(
    line
    for line in """
How many {l} are there in {w}
How many {l} can you find in {w}
How many {l} does the word {w} contain
How many {l} letters does {w} have
Count the letter {l} in the word {w}
How often does {l} occur in {w}
How often does the letter {l} show up in {w}
What number of {l} is in {w}
Please count every {l} in {w}
Could you tell me how many {l} {w} has
I need the number of {l} in {w}
{w}: how many {l}
Letter {l} in {w}, how many times
Quick question, how many {l} in {w}
How many copies of {l} appear in the word {w}
Spell {w} and count its {l}
Tally the {l} in {w}
How many times do you see {l} in {w}
How many {l} would I find in {w}
What's the total number of {l} in the word {w}
Work out how many {l} are in {w}
Determine the count of letter {l} in {w}
In {w}, how often is {l} used
Does {w} contain {l}, and how many times
How many {l} characters are in {w}
Find out how many {l} the word {w} contains
Count up the {l} in {w} for me
Number of times {l} occurs in {w}
How many {l}s does {w} have
{w} contains how many {l}
Cuántas {l} tiene la palabra {w}
Cuántas veces sale la {l} en {w}
Dime cuántas {l} hay en {w}
Cuenta cuántas letras {l} tiene {w}
{w}这个单词里有几个{l}
请数一数{w}里有多少个{l}
字母{l}在{w}中出现了几次
{w}包含多少个{l}
{w}에는 {l}가 몇 개 들어 있나요
{w}에서 {l}는 몇 번 나와요
{w} 단어 속 {l}의 개수를 세어 주세요
{l}가 {w}에 몇 번 등장하나요
Combien de {l} y a-t-il dans {w}
Combien de fois la lettre {l} figure dans {w}
Compte le nombre de {l} dans le mot {w}
Wie viele {l} hat das Wort {w}
Wie häufig steht {l} in {w}
Zähl bitte die {l} in {w}
{w}には{l}がいくつありますか
{w}という単語に{l}は何回出てきますか
{w}の{l}の数を数えてください
""".splitlines()
    if line
)
QUOTES = ("", "'", '"')


def example_seed(split: str, index: int) -> int:
    """The random seed of example ``index`` of ``split`` (rule in the module docstring)."""
    if split not in SPLITS or index < 0:
        raise ValueError(f"need split in {SPLITS} and index >= 0, got {split!r}, {index}")
    block, offset = divmod(index, SEED_BLOCK)
    return (2 * block + SPLITS.index(split)) * SEED_BLOCK + offset


def spelled(word: str) -> str:
    """``word:w,o,r,d``: the word, a colon, then its letters separated by commas."""
    return f"{word}:{','.join(word)}"


class _WordTask(Task):
    """Shared by both tasks: ``size`` generated examples of ``split`` drawn from a word list."""

    _shuffle_seed: int | None = None

    def __init__(
        self, size: int = 1000, split: str = "train", *, words_path: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if split not in SPLITS:
            raise ValueError(f"{type(self).__name__} split must be one of {', '.join(SPLITS)}; got {split!r}")
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
            raise ValueError(f"{type(self).__name__} size must be an integer >= 0; got {size!r}")
        self.size, self.split = int(size), split
        self.words = load_words(words_path, self._shuffle_seed)

    @property
    def eval_type(self) -> str:
        """'generative': the model answers in free text."""
        return "generative"

    def num_examples(self) -> int:
        return self.size

    def _rng(self, index: int) -> random.Random:
        if not 0 <= index < self.size:
            raise IndexError(f"example {index} out of range for {type(self).__name__} of size {self.size}")
        return random.Random(example_seed(self.split, index))


def letter_count_parts(word: str, letter: str) -> list[dict[str, str]]:
    """The assistant's answer: spell by hand, count step by step, check with Python, ``#### N``."""
    lines, count = [], 0
    for position, char in enumerate(word, 1):  # no space after the colon: "2:r" stays one token pattern
        count += char == letter
        lines.append(f"{position}:{char} match, count={count}" if char == letter else f"{position}:{char}")
    manual = (
        f"We need to count the letter '{letter}' in '{word}'. I will do it by hand first.\n\n"
        f"Spelled out, the word is:\n{spelled(word)}\n\nGoing through it letter by letter:\n"
        + "\n".join(lines)
        + f"\n\nBy hand I get {count}."
    )
    return [
        {"type": "text", "text": manual},
        {"type": "text", "text": "\n\nLet me confirm that with Python:\n\n"},
        {"type": "python", "text": f"{word!r}.count({letter!r})"},
        {"type": "python_output", "text": str(count)},
        {"type": "text", "text": f"\n\nPython agrees: {count}.\n\nFinal answer:\n\n#### {count}"},
    ]


class SpellingBee(_WordTask, FinalNumberTask):
    """How many times does a letter occur in a word? Graded on the ``#### N`` number (GSM8K's rule)."""

    tools = ("calculator",)

    def get_example(self, index: int) -> Conversation:
        rng = self._rng(index)
        word = rng.choice(self.words)
        # 90% a letter of the word, else any letter (often a count of 0)
        letter = rng.choice(word) if rng.random() < 0.9 else rng.choice(LETTERS)
        template = rng.choice(PHRASINGS)
        if rng.random() < 0.3:
            template = template.lower()
        letter_quote, word_quote = rng.choice(QUOTES), rng.choice(QUOTES)
        question = template.format(
            l=f"{letter_quote}{letter}{letter_quote}", w=f"{word_quote}{word}{word_quote}"
        )
        if rng.random() < 0.5:
            question += "?"
        return {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": letter_count_parts(word, letter)},
            ]
        }


class SimpleSpelling(_WordTask):
    """Spell a word letter by letter: ``Spell the word: apple`` -> ``apple:a,p,p,l,e``."""

    _shuffle_seed = SIMPLE_SHUFFLE_SEED

    def get_example(self, index: int) -> Conversation:
        word = self._rng(index).choice(self.words)
        return {
            "messages": [
                {"role": "user", "content": f"Spell the word: {word}"},
                {"role": "assistant", "content": spelled(word)},
            ]
        }

    def evaluate(self, conversation: Conversation, assistant_response: Any) -> int:
        """1 when the response, stripped of surrounding whitespace, is exactly the spelling, else 0."""
        return int(assistant_text(assistant_response).strip() == conversation["messages"][-1]["content"])
