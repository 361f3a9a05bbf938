"""Runs made before reasoning and tools existed: regrade splits their reasoning, resume still works;
``--tools`` and ``--reasoning-tags`` from the command line reach the backend and run.json.

An "old" run is made by the current runner and then rewritten the way chattasks 0.1.0 wrote it:
journal lines without a schema or any reasoning field, graded on the raw reply, and a run.json
whose decoding settings know nothing of tools or reasoning tags.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.eval.backends import BACKENDS
from chattasks.eval.backends.base import Completion
from chattasks.eval.journal import read_records
from chattasks.eval.regrade import regrade
from chattasks.eval.runner import evaluate_model
from chattasks.tasks.gsm8k import extract_answer

NEW_FIELDS = ("schema", "answer", "reasoning", "reasoning_tokens", "finish_reason", "tokens", "tool_calls")


def thinker(messages) -> str:
    """Puts the right mem-GSM8K answer inside its reasoning only."""
    a, b, c = map(int, re.findall(r"\d+", messages[-1]["content"])[:3])
    return f"<think>{a} + {b}*{c} = #### {a + b * c}</think>I am not sure."


class Thinking:
    """A command-line backend that thinks (answering inside its reasoning) and remembers its configs."""

    name = "thinking"
    OPTIONS = ()
    configs: list = []

    def __init__(self, model=None) -> None:
        self.model = model

    def describe(self):
        return {"backend": self.name, "model": "thinking"}

    def generate(self, prompts, config):
        Thinking.configs.append(config)
        return [[Completion(thinker(p), finish_reason="stop")] * config.num_samples for p in prompts]

    def letter_scores(self, prompts, letters):
        raise NotImplementedError

    def loglikelihoods(self, contexts, continuations):
        raise NotImplementedError

    def close(self):
        pass


@pytest.fixture(autouse=True)
def _thinking_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "thinking", f"{__name__}:Thinking")
    Thinking.configs.clear()


def make_old(run_dir) -> None:
    """Rewrite a run as chattasks 0.1.0 left it (see the module docstring)."""
    journal = run_dir / "samples" / "mem-GSM8K.jsonl"
    lines = []
    for line in journal.read_text().splitlines():
        record = {k: v for k, v in json.loads(line).items() if k not in NEW_FIELDS}
        record["extracted"] = extract_answer(record["response"])  # the old grader read the raw reply
        record["score"], record["failure"] = 1.0, None
        lines.append(json.dumps(record))
    journal.write_text("\n".join(lines) + "\n")
    for name, generation in (
        ("run.json", lambda p: p["settings"]["generation"]),
        ("results.json", lambda p: p["generation"]),
    ):
        payload = json.loads((run_dir / name).read_text())
        for key in ("tools", "reasoning_tags"):
            del generation(payload)[key]
        (run_dir / name).write_text(json.dumps(payload))


def test_regrade_splits_the_reasoning_of_an_old_run(memory_tasks, tmp_path):
    out = tmp_path / "run"
    evaluate_model(thinker, ["mem-GSM8K"], limit=4, output=out)
    make_old(out)
    assert all(
        r.score == 1.0 and r.reasoning is None
        for r in read_records(out / "samples" / "mem-GSM8K.jsonl").records.values()
    )
    results = regrade(out)
    assert results["mem-GSM8K"].accuracy == 0.0 and results["mem-GSM8K"].failures == {"no_answer": 4}
    record = results.samples["mem-GSM8K"][0]
    assert record.reasoning == "4 + 2*3 = #### 10" and record.answer == "I am not sure."
    saved = json.loads((out / "results.json").read_text())
    assert saved["tasks"]["mem-GSM8K"]["failures"] == {"no_answer": 4}
    assert saved["tasks"]["mem-GSM8K"]["tools"] is None


def test_the_command_line_regrades_and_resumes_an_old_run(memory_tasks, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["eval", "--backend", "thinking", "--tasks", "mem-GSM8K", "--limit", "3", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    make_old(out)
    result = CliRunner().invoke(app, ["regrade", str(out)])
    assert result.exit_code == 0, result.output
    assert "no_answer" in result.output
    journal = out / "samples" / "mem-GSM8K.jsonl"
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:2]))  # killed before the third
    result = CliRunner().invoke(app, ["eval", "--resume", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert [config.tools for config in Thinking.configs] == [
        "auto",
        "none",
    ]  # the rest decoded as the old run was
    assert len(read_records(journal).records) == 3


def test_tools_and_reasoning_tags_from_the_command_line(memory_tasks, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "--backend", "thinking", "--tasks", "mem-GSM8K", "--limit", "2", "--output", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--tools", "none", "--reasoning-tags", "<think>,</think>;[T],[/T]"]
    )
    assert result.exit_code == 0, result.output
    (config,) = Thinking.configs
    assert config.tools == "none" and config.reasoning_tags == (("<think>", "</think>"), ("[T]", "[/T]"))
    settings = json.loads((out / "run.json").read_text())["settings"]["generation"]
    assert settings["tools"] == "none" and settings["reasoning_tags"] == [
        ["<think>", "</think>"],
        ["[T]", "[/T]"],
    ]
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "other"), "--tools", "python"])
    assert bad.exit_code == 2 and "tools must be one of auto, calculator, none" in bad.output
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "other"), "--reasoning-tags", "<think>"])
    assert bad.exit_code == 2 and "OPEN,CLOSE" in bad.output
