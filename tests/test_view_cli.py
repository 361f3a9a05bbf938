"""chattasks view (and eval's --report): the report written from the command line."""

from __future__ import annotations

import re

import pytest
from report_runs import make_run
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.eval.backends import BACKENDS
from chattasks.eval.backends.base import LetterScores

runner = CliRunner()


class SecondLetter:
    """A model that picks every question's second letter and answers every problem with 7."""

    name = "second-letter"
    OPTIONS = ()

    def __init__(self, model=None) -> None:
        self.model = model

    def describe(self):
        return {"backend": self.name, "model": self.model or "second"}

    def letter_scores(self, prompts, letters):
        return [LetterScores({ls[1]: 0.0}, "logits") for ls in letters]

    def generate(self, prompts, config):
        return [["#### 7"] * config.num_samples for _ in prompts]

    def close(self):
        pass


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args], terminal_width=200)


def test_view_writes_the_report_into_the_run(memory_tasks, tmp_path):
    run = make_run(tmp_path / "run", 1)
    result = invoke("view", run)
    assert result.exit_code == 0, result.output
    path = run / "report.html"
    assert result.output.startswith(f"report: {path} (")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    assert '<script type="application/json" id="report-data">' in html


def test_view_of_several_runs_writes_a_comparison(memory_tasks, tmp_path):
    runs = [make_run(tmp_path / "a", 1), make_run(tmp_path / "b", 2)]
    result = invoke("view", *runs)
    assert result.exit_code == 0, result.output
    assert (runs[0] / "comparison.html").is_file()
    out = tmp_path / "reports" / "ab.html"
    assert invoke("view", *runs, "--out", out).exit_code == 0
    assert 'id="flipped"' in out.read_text()


def test_view_of_something_that_is_not_a_run_is_one_error_line(tmp_path):
    result = invoke("view", tmp_path)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {tmp_path} holds no run (run.json is missing)"]


@pytest.mark.parametrize("flag", [None, "--no-report"])
def test_eval_writes_the_report_unless_told_not_to(memory_tasks, tmp_path, monkeypatch, flag):
    monkeypatch.setitem(BACKENDS, "second", f"{__name__}:SecondLetter")
    out = tmp_path / "run"
    args = ["eval", "--backend", "second", "--tasks", "mem-ARC,mem-GSM8K", "--limit", "5", "--output", out]
    result = invoke(*args, *([flag] if flag else []))
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    if flag is None:
        assert last == f"report: {out / 'report.html'}"
        assert (out / "report.html").is_file()
    else:
        assert last == f"results: {out / 'results.json'}"
        assert not (out / "report.html").exists()
