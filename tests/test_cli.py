"""The chattasks command: list, show, validate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from chattasks import register_task
from chattasks.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _identity_task(request):
    fixtures = request.config.rootpath / "tests" / "fixtures" / "customjson"
    register_task(
        "test-identity",
        "chattasks.tasks.customjson:CustomJSON",
        replace=True,
        filepath=str(fixtures / "identity.jsonl"),
    )


def test_help_lists_the_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("list", "show", "validate"):
        assert command in result.output


def test_the_command_line_loads_no_model_or_network_library_until_a_command_needs_one():
    code = (
        "import sys; from chattasks.cli import app; "
        "print(sorted(m for m in ('torch', 'transformers', 'httpx', 'jinja2', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_shows_every_registered_task(hub_dir):
    result = runner.invoke(app, ["list", "--data-dir", str(hub_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("ARC-Easy", "MMLU", "GSM8K", "HumanEval", "SmolTalk", "SpellingBee", "test-identity"):
        assert name in result.output
    assert "training" in result.output  # test-identity is training-only


def test_show_prints_a_conversation():
    result = runner.invoke(app, ["show", "test-identity", "1"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "¿Hablas español?" in result.output and "assistant" in result.output


def test_show_as_json_and_with_task_arguments():
    result = runner.invoke(app, ["show", "test-identity", "0", "--json", "--arg", "start=2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["messages"][1]["content"] == "ok"


def test_show_out_of_range_is_a_one_line_error():
    result = runner.invoke(app, ["show", "test-identity", "99"])
    assert result.exit_code == 1
    assert "index 99 out of range" in result.output


def test_show_bad_argument_syntax_is_a_usage_error():
    result = runner.invoke(app, ["show", "test-identity", "--arg", "no-equals-sign"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_validate_ok_file(fixtures_dir):
    result = runner.invoke(app, ["validate", str(fixtures_dir / "customjson" / "identity.jsonl")])
    assert result.exit_code == 0
    assert "3 conversations OK" in result.output


def test_validate_prints_every_fault_and_exits_1(fixtures_dir):
    path = fixtures_dir / "customjson" / "broken.jsonl"
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    faults = [line for line in result.output.splitlines() if line.startswith(f"{path}:")]
    assert [int(line.split(":")[1]) for line in faults] == [2, 3, 4, 5, 7, 8, 9]


def test_validate_missing_file(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "gone.jsonl")])
    assert result.exit_code == 1 and "gone.jsonl" in result.output


def test_unknown_task_is_a_one_line_usage_error_from_the_console_script():
    proc = subprocess.run(
        [sys.executable, "-m", "chattasks", "show", "NoSuchTask"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown task 'NoSuchTask'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("ARC-Easy", "Multiple Choice question"),
        ("ARC-Challenge", "Respond only with the letter"),
        ("MMLU", "Multiple Choice question"),
        ("GSM8K", "<python>"),
        ("HumanEval", "def "),
        ("SpellingBee", "<output>"),
        ("SimpleSpelling", "Spell the word"),
        ("SmolTalk", "assistant"),
    ],
)
def test_show_covers_every_builtin_task(hub_dir, task, expected):
    result = runner.invoke(app, ["show", task, "3", "--data-dir", str(hub_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert expected in result.output and "row 3 of" in result.output
