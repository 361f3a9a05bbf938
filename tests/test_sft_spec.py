"""Mixture spec files: parsing, one-line errors naming file/table/key, repeats and proportions."""

from __future__ import annotations

from pathlib import Path

import pytest

from chattasks.errors import SpecError
from chattasks.sft.spec import MixtureSpec, TaskSpec, load_spec, parse_spec
from chattasks.task import Task, TaskMixture, TaskSequence
from chattasks.tasks.customjson import CustomJSON

SPEC = Path(__file__).resolve().parent / "fixtures" / "sft" / "mixture.toml"
IDENTITY = Path(__file__).resolve().parent / "fixtures" / "customjson" / "identity.jsonl"


class Numbers(Task):
    """``n`` one-turn conversations numbered 0..n-1 (enough to check row counts and order)."""

    def __init__(self, n: int, tag: str = "", **kwargs):
        super().__init__(**kwargs)
        self.n, self.tag = n, tag

    @property
    def eval_type(self) -> str:
        return "generative"

    def num_examples(self) -> int:
        return self.n

    def get_example(self, index: int):
        return {
            "messages": [
                {"role": "user", "content": f"{self.tag}{index}"},
                {"role": "assistant", "content": "ok"},
            ]
        }


NUMBERS = f"{__name__}:Numbers"


def spec(*tables: str, top: str = "") -> MixtureSpec:
    from chattasks.sft.spec import tomllib

    text = top + "\n" + "\n".join(f"[[tasks]]\n{table}" for table in tables)
    return parse_spec(tomllib.loads(text), source="mix.toml")


def test_the_fixture_spec_builds_nanochats_shape_of_mixture(monkeypatch, hub_dir, words_file):
    monkeypatch.setenv("CHATTASKS_WORDS_FILE", str(words_file))
    mixture = load_spec(SPEC).build(data_dir=hub_dir)
    assert isinstance(mixture.task, TaskMixture) and mixture.task.seed == 42
    assert [(e.spec.label, e.rows) for e in mixture.entries] == [
        ("SmolTalk", 400),
        ("identity", 2 * 3),
        ("GSM8K", 2 * 150),
        ("SpellingBee", 120),
    ]
    assert len(mixture) == 400 + 6 + 300 + 120
    identity = mixture.entries[1].task
    assert (
        isinstance(identity, CustomJSON) and Path(identity.filepath).resolve() == IDENTITY
    )  # relative to the spec
    labels = [mixture.label_of(i) for i in range(len(mixture))]
    assert {label: labels.count(label) for label in set(labels)} == {
        "SmolTalk": 400,
        "identity": 6,
        "GSM8K": 300,
        "SpellingBee": 120,
    }


def test_repeat_lists_a_task_again_and_sequence_keeps_task_order():
    mixture = spec(
        f'task = "{NUMBERS}"\nargs = {{ n = 3, tag = "a" }}\nrepeat = 2',
        f'task = "{NUMBERS}"\nargs = {{ n = 2, tag = "b" }}',
        top='order = "sequence"',
    ).build()
    assert isinstance(mixture.task, TaskSequence)
    assert [c["messages"][0]["content"] for c in mixture.task] == [
        "a0",
        "a1",
        "a2",
        "a0",
        "a1",
        "a2",
        "b0",
        "b1",
    ]


def test_proportions_beside_repeats_scale_to_the_repeated_rows():
    # 300 fixed rows are 75% of the mixture, so the proportion task gets 100 rows: one pass of 60 and 40 more
    mixture = spec(
        f'task = "{NUMBERS}"\nargs = {{ n = 300 }}',
        f'task = "{NUMBERS}"\nargs = {{ n = 60 }}\nproportion = 0.25',
    ).build()
    assert [e.rows for e in mixture.entries] == [300, 100]
    assert mixture.entries[1].passes == (1, 40)
    assert len(mixture) == 400


def test_proportions_alone_size_the_mixture_so_no_row_repeats():
    mixture = spec(
        f'task = "{NUMBERS}"\nargs = {{ n = 100 }}\nproportion = 0.5',
        f'task = "{NUMBERS}"\nargs = {{ n = 30 }}\nproportion = 0.5',
    ).build()
    assert [e.rows for e in mixture.entries] == [30, 30]
    sized = spec(
        f'task = "{NUMBERS}"\nargs = {{ n = 100 }}\nproportion = 0.8',
        f'task = "{NUMBERS}"\nargs = {{ n = 30 }}\nproportion = 0.2',
        top="size = 250",
    ).build()
    assert [e.rows for e in sized.entries] == [200, 50]


def test_labels_default_to_the_task_name_numbered_when_repeated():
    parsed = spec('task = "GSM8K"', 'task = "GSM8K"', 'customjson = "x/identity.jsonl"\nlabel = "me"')
    assert [t.label for t in parsed.tasks] == ["GSM8K", "GSM8K #2", "me"]
    assert parsed.tasks[2] == TaskSpec(
        "chattasks.tasks.customjson:CustomJSON", {"filepath": "x/identity.jsonl"}, label="me"
    )


@pytest.mark.parametrize(
    ("top", "table", "message"),
    [
        ("seed = -1", 'task = "GSM8K"', "mix.toml: key 'seed': expected an integer >= 0, got -1"),
        (
            'order = "random"',
            'task = "GSM8K"',
            "mix.toml: key 'order': expected one of 'mixture', 'sequence', got 'random'",
        ),
        (
            "epochs = 2",
            'task = "GSM8K"',
            "mix.toml: key 'epochs': unknown top-level key; expected one of seed, order, size, tasks",
        ),
        ("", "repeat = 2", "mix.toml: [[tasks]] #1: expected exactly one of 'task'"),
        (
            "",
            'task = "GSM8K"\nrepeat = 0',
            "mix.toml: [[tasks]] #1 key 'repeat': expected an integer >= 1, got 0",
        ),
        (
            "",
            'task = "GSM8K"\nrepeat = 1.5',
            "mix.toml: [[tasks]] #1 key 'repeat': expected an integer >= 1, got 1.5",
        ),
        (
            "",
            'task = "GSM8K"\nproportion = 1.5',
            "mix.toml: [[tasks]] #1 key 'proportion': expected a number in (0, 1], got 1.5",
        ),
        (
            "",
            'task = "GSM8K"\nrepeat = 2\nproportion = 0.5',
            "mix.toml: [[tasks]] #1: give either 'repeat' or 'proportion', not both",
        ),
        (
            "",
            'task = "GSM8K"\nargs = 3',
            "mix.toml: [[tasks]] #1 key 'args': expected a table of task arguments, got 3",
        ),
        (
            "",
            'task = "GSM8K"\nweight = 2',
            "mix.toml: [[tasks]] #1 key 'weight': unknown key; expected one of task,",
        ),
        (
            "size = 10",
            'task = "GSM8K"',
            "mix.toml: key 'size': only allowed when every task has a 'proportion'",
        ),
    ],
)
def test_spec_errors_name_the_file_the_table_and_the_key(top, table, message):
    with pytest.raises(SpecError) as info:
        spec(table, top=top)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_a_spec_without_tasks_is_refused():
    with pytest.raises(
        SpecError, match=r"mix.toml: \[\[tasks\]\]: expected at least one \[\[tasks\]\] table"
    ):
        parse_spec({"seed": 1}, source="mix.toml")


def test_build_errors_name_the_table_and_task():
    with pytest.raises(
        SpecError, match=r"mix.toml: \[\[tasks\]\] #1 \(Nope\): key 'task': unknown task 'Nope'"
    ):
        spec('task = "Nope"').build()
    with pytest.raises(
        SpecError, match=r"\[\[tasks\]\] #1 \(GSM8K\): cannot build GSM8K with args \{'subset': 'nope'\}"
    ):
        spec('task = "GSM8K"\nargs = { subset = "nope" }').build()
    with pytest.raises(SpecError, match="proportions sum to 1.2; expected 1"):
        spec(
            f'task = "{NUMBERS}"\nargs = {{ n = 3 }}\nproportion = 0.6',
            f'task = "{NUMBERS}"\nargs = {{ n = 3 }}\nproportion = 0.6',
        ).build()


def test_spec_files_that_are_missing_or_not_toml(tmp_path):
    with pytest.raises(FileNotFoundError, match="mixture spec not found"):
        load_spec(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 3\n")
    with pytest.raises(SpecError, match=f"{bad}: invalid TOML"):
        load_spec(bad)
