"""Contamination of evaluation tasks by a mixture: planted overlaps found with exact counts and locations.

A CustomJSON file plants known pieces of real test items (from ../shared/data/hub) in a mixture
spec; the report must equal a brute-force reference computed here from word tuples, and the
planted rows must be where the report says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.contamination import (
    ContaminationReport,
    check_contamination,
    contaminated_indices,
    evaluation_tasks,
    item_text,
    training_views,
)
from chattasks.errors import ReportError
from chattasks.ngrams import conversation_text, words
from chattasks.sft.spec import load_spec

TASKS = ["GSM8K", "MMLU", "ARC-Easy", "ARC-Challenge", "HumanEval"]
N = 13


def variant(text: str) -> str:
    """The same words written differently: full-width, upper case, odd spaces and punctuation."""
    out = []
    for number, word in enumerate(text.split()):
        if number % 3 == 0:
            word = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in word)
        elif number % 3 == 1:
            word = f"“{word.upper()}”…"
        out.append(word)
    return "\u00a0\u3000".join(out)


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


@pytest.fixture(scope="module")
def evaluation(hub_dir):
    return dict(evaluation_tasks(TASKS, hub_dir))


@pytest.fixture(scope="module")
def planted(evaluation, tmp_path_factory):
    """The planted file and spec, and what each planted row should (or should not) contaminate."""
    gsm8k, mmlu, arc_easy = evaluation["GSM8K"], evaluation["MMLU"], evaluation["ARC-Easy"]
    across = words(item_text(gsm8k[2]))[:N]  # one 13-gram, split over two messages
    apart = words(item_text(gsm8k[5]))[:N]  # one 13-gram, split over two conversations
    short = words(item_text(arc_easy[26]))  # 8 words: the whole text is its gram
    shortened = words(item_text(arc_easy[82]))[:-1]
    mmlu_text = item_text(mmlu[1])
    assert words(variant(mmlu_text)) == words(mmlu_text) and variant(mmlu_text) != mmlu_text
    rows = [
        [message("user", "Hi there!"), message("assistant", "Hello, how can I help?")],
        [message("user", "Solve this: " + item_text(gsm8k[1]).upper()), message("assistant", "OK!")],
        [
            message("user", "Read: " + " ".join(across[:7])),
            message("assistant", " ".join(across[7:]) + ", right"),
        ],
        [message("user", "first half"), message("assistant", " ".join(apart[:7]))],
        [message("user", " ".join(apart[7:])), message("assistant", "second half")],
        [message("user", variant(mmlu_text)), message("assistant", "B")],
        [message("user", "Quiz -- " + ", ".join(short).upper() + "?!"), message("assistant", "vibrations")],
        [message("user", " ".join(shortened)), message("assistant", "no")],
        [
            message("user", "Complete:\n" + evaluation["HumanEval"][2]["messages"][0]["content"]),
            message("assistant", "ok"),
        ],
        [message("user", "Again: " + item_text(gsm8k[1])), message("assistant", "OK!")],
        [
            message("user", " ".join(words(item_text(evaluation["ARC-Challenge"][2]))[:12])),
            message("assistant", "?"),
        ],
    ]
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.jsonl").write_text(
        "\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n"
    )
    spec = folder / "mixture.toml"
    spec.write_text(
        '[[tasks]]\ncustomjson = "planted.jsonl"\n\n'
        '[[tasks]]\ntask = "GSM8K"\nargs = { subset = "main", split = "train", stop = 50 }\nrepeat = 2\n'
    )
    expected = {  # (task, item) -> planted row, with the gram when it is known exactly
        ("GSM8K", 1): (1, None),
        ("GSM8K", 2): (2, " ".join(across)),
        ("MMLU", 1): (5, None),
        ("ARC-Easy", 26): (6, " ".join(short)),
        ("HumanEval", 2): (8, None),
    }
    absent = [("GSM8K", 5), ("ARC-Easy", 82), ("ARC-Challenge", 2)]
    return spec, expected, absent


@pytest.fixture(scope="module")
def mixture(planted, hub_dir):
    return load_spec(planted[0]).build(hub_dir)


@pytest.fixture(scope="module")
def report(mixture, evaluation):
    return check_contamination(mixture, evaluation, n=N)


def reference(mixture, evaluation, n: int) -> dict[tuple[str, int], tuple[str, int, str]]:
    """Brute force: for each item, the first training row holding one of its grams, and the earliest gram there."""
    first: dict[
        tuple[str, ...], tuple[int, int]
    ] = {}  # gram -> (training order, start) of its first occurrence
    places = []
    for label, view in training_views(mixture):
        for row, conversation in enumerate(view):
            text = words(conversation_text(conversation))
            order = len(places)
            places.append((label, row))
            for length in range(1, n + 1):
                for start in range(len(text) - length + 1):
                    first.setdefault(tuple(text[start : start + length]), (order, start))
    found = {}
    for name, task in evaluation.items():
        for item, conversation in enumerate(task):
            w = words(item_text(conversation))
            grams = (
                [tuple(w[i : i + n]) for i in range(len(w) - n + 1)] if len(w) >= n else [tuple(w)] * bool(w)
            )
            hits = [(*first[g], len(g), g) for g in grams if g in first]
            if hits:
                order, _, _, gram = min(hits)
                found[name, item] = (*places[order], " ".join(gram))
    return found


@pytest.mark.slow
def test_report_equals_brute_force_on_every_item(report, mixture, evaluation):
    got = {(t.task, m.item): (m.source, m.row, m.ngram) for t in report.tasks for m in t.matches}
    assert got == reference(mixture, evaluation, N)


@pytest.mark.slow
def test_planted_overlaps_are_found_where_they_were_planted(report, planted):
    _, expected, absent = planted
    for (task, item), (row, gram) in expected.items():
        match = {m.item: m for m in report.task(task).matches}[item]
        assert (match.source, match.row) == ("planted", row), (task, item)
        if gram is not None:
            assert match.ngram == gram
    for task, item in absent:
        assert item not in report.contaminated(task), (task, item)


@pytest.mark.slow
def test_counts_and_sizes(report, evaluation):
    assert [t.task for t in report.tasks] == TASKS
    for task in report.tasks:
        assert task.items == len(evaluation[task.task])
        assert task.contaminated == len(task.indices) == len(task.matches)
        assert [m.item for m in task.matches] == sorted(task.indices)
    assert report.sources == {"planted": 11, "GSM8K": 50}  # a repeated task is read once
    assert report.conversations == 61
    counts = {t.task: t.contaminated for t in report.tasks}
    assert counts["GSM8K"] >= 2 and counts["HumanEval"] >= 1 and counts["ARC-Easy"] >= 1
    shorts = {t.task: t.short_items for t in report.tasks}
    assert shorts["ARC-Easy"] == sum(0 < len(words(item_text(c))) < N for c in evaluation["ARC-Easy"])
    assert shorts["ARC-Easy"] > 0 and shorts["GSM8K"] == 0


@pytest.mark.slow
def test_fingerprints_are_those_of_the_eval_runner(report, evaluation):
    from chattasks.eval.plan import fingerprint

    for task in report.tasks:
        assert task.fingerprint == fingerprint(list(evaluation[task.task]))


def test_item_text_uses_the_question_and_choices_of_multiple_choice_items(evaluation):
    conversation = evaluation["ARC-Easy"][0]
    text = item_text(conversation)
    assert text.split("\n") == [conversation["question"], *conversation["choices"]]
    assert "Respond only" in conversation["messages"][0]["content"] and "Respond only" not in text
    gsm8k = evaluation["GSM8K"][0]
    assert item_text(gsm8k) == conversation_text(gsm8k)
    assert gsm8k["messages"][0]["content"] in item_text(gsm8k)


@pytest.mark.slow
def test_report_round_trips_through_json(report, tmp_path):
    path = tmp_path / "report.json"
    report.to_json(path)
    loaded = ContaminationReport.from_json(path)
    assert loaded == report
    assert contaminated_indices(path, "gsm8k") == report.contaminated("GSM8K")
    data = json.loads(path.read_text())
    assert data["tasks"]["GSM8K"]["contaminated"] == report.task("GSM8K").contaminated
    assert data["n"] == N and data["training"]["conversations"] == 61


@pytest.mark.slow
def test_a_smaller_n_finds_at_least_as_much(mixture, evaluation, report):
    smaller = check_contamination(mixture, {"GSM8K": evaluation["GSM8K"]}, n=8)
    assert smaller.contaminated("GSM8K") >= report.contaminated("GSM8K")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("tasks"), "tasks: expected dict"),
        (lambda d: d.update(version=99), "version: expected 1"),
        (lambda d: d["tasks"]["GSM8K"].update(contaminated=7), "contaminated: 7 but 1 matches"),
        (lambda d: d["tasks"]["GSM8K"]["matches"][0].update(row="x"), "matches[0].row: expected int"),
    ],
)
def test_a_malformed_report_names_the_field(tmp_path, change, message):
    data = {
        "version": 1,
        "n": 13,
        "normalization": "x",
        "training": {"conversations": 1, "sources": {"a": 1}},
        "tasks": {
            "GSM8K": {
                "items": 3,
                "contaminated": 1,
                "short_items": 0,
                "empty_items": 0,
                "fingerprint": "",
                "matches": [{"item": 2, "source": "a", "row": 0, "ngram": "x y"}],
            }
        },
    }
    assert ContaminationReport.from_dict(data).contaminated("GSM8K") == {2}
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        ContaminationReport.from_json(path)
    assert str(path) in str(caught.value)


def test_a_task_missing_from_the_report_lists_those_present():
    report = ContaminationReport(n=13, tasks=[], sources={})
    with pytest.raises(ReportError, match="no task 'MMLU'; it has: none"):
        contaminated_indices(report, "MMLU")
    with pytest.raises(FileNotFoundError, match="gone.json"):
        contaminated_indices("gone.json", "MMLU")


def test_the_command_prints_a_table_and_writes_the_report(planted, hub_dir, tmp_path):
    spec = planted[0]
    out = tmp_path / "report.json"
    args = ["contamination", str(spec), "--against", "GSM8K,ARC-Easy", "--data-dir", str(hub_dir)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--sample", "1"])
    assert result.exit_code == 0, result.output
    report = ContaminationReport.from_json(out)
    assert [t.task for t in report.tasks] == ["GSM8K", "ARC-Easy"]
    assert report.spec == str(spec)
    assert {1, 2} <= report.contaminated("GSM8K") and 5 not in report.contaminated("GSM8K")
    assert report.task("ARC-Easy").matches[0].item == 26 or 26 in report.contaminated("ARC-Easy")
    gsm8k = report.task("GSM8K")
    assert f"{gsm8k.items:,}" in result.output and f"{gsm8k.fraction:.1%}" in result.output
    first = gsm8k.matches[0]
    assert f"GSM8K item {first.item} <- {first.source} row {first.row}" in result.output
    printed = CliRunner().invoke(app, [*args, "--json", "--n", "20", "--max-items-per-gram", "10"])
    assert printed.exit_code == 0, printed.output
    data = json.loads(printed.output)
    assert (
        data["n"] == 20 and data["max_items_per_gram"] == 10 and set(data["tasks"]) == {"GSM8K", "ARC-Easy"}
    )
    assert "contamination" in CliRunner().invoke(app, ["--help"]).output


def test_an_unknown_task_is_a_one_line_error(planted, hub_dir):
    command = [sys.executable, "-m", "chattasks", "contamination", str(planted[0]), "--against", "GSM8K,Nope"]
    proc = subprocess.run([*command, "--data-dir", str(hub_dir)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: unknown task 'Nope'") and "Traceback" not in proc.stderr


def test_the_default_n_is_the_libraries():
    from chattasks.cli.contamination import DEFAULT_N
    from chattasks.ngram_index import DEFAULT_N as LIBRARY_N

    assert DEFAULT_N == LIBRARY_N == 13


def test_training_can_be_a_task_or_a_mapping(evaluation, planted):
    from chattasks.tasks.customjson import CustomJSON

    planted_task = CustomJSON(Path(planted[0]).parent / "planted.jsonl")
    against = {"ARC-Easy": evaluation["ARC-Easy"]}
    by_task = check_contamination(planted_task, against)
    by_mapping = check_contamination({"mine": planted_task}, against)
    assert by_task.contaminated("ARC-Easy") == by_mapping.contaminated(
        "ARC-Easy"
    ) and 26 in by_task.contaminated("ARC-Easy")
    assert by_task.sources == {"CustomJSON": 11} and by_mapping.task("ARC-Easy").matches[0].source == "mine"
    with pytest.raises(TypeError, match="expected a Mixture"):
        check_contamination([planted_task], against)
