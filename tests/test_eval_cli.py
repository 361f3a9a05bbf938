"""chattasks eval / regrade: the runner on the command line (in-memory tasks), one-line errors, resume."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.errors import BackendError, NotSupported
from chattasks.eval.backends import BACKENDS
from chattasks.eval.backends.base import BackendOption, LetterScores
from chattasks.eval.journal import read_records, rewrite_records

runner = CliRunner()


class FirstLetter:
    """A model that always picks the first letter and answers every problem with 0."""

    name = "first-letter"
    OPTIONS = (
        BackendOption("device", str, "where", operational=True),
        BackendOption("batch_size", int, "rows", operational=True),
    )
    instances: list[FirstLetter] = []

    def __init__(self, model=None, *, device="cpu", batch_size=8) -> None:
        self.model, self.device, self.batch_size = model, device, batch_size
        self.questions = 0
        FirstLetter.instances.append(self)

    def describe(self):
        return {"backend": self.name, "model": self.model or "first", "device": self.device}

    def letter_scores(self, prompts, letters):
        self.questions += len(prompts)
        return [LetterScores({ls[0]: 0.0}, "logits") for ls in letters]

    def loglikelihoods(self, contexts, continuations):
        raise NotSupported("no log-likelihoods")

    def generate(self, prompts, config):
        self.questions += len(prompts)
        return [["#### 0"] * config.num_samples for _ in prompts]

    def close(self):
        pass


class Unloadable:
    """A backend whose model cannot be loaded."""

    OPTIONS = ()

    def __init__(self, model=None) -> None:
        raise BackendError(f"cannot load model {model!r}: no chat template")


@pytest.fixture(autouse=True)
def _fake_backends(monkeypatch):
    monkeypatch.setitem(BACKENDS, "first", f"{__name__}:FirstLetter")
    monkeypatch.setitem(BACKENDS, "unloadable", f"{__name__}:Unloadable")
    FirstLetter.instances.clear()


def invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=160)


def eval_args(out, *extra: str) -> list[str]:
    return ["eval", "--backend", "first", "--output", str(out), *extra]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_eval_prints_the_table_and_writes_the_run(memory_tasks, tmp_path):
    out = tmp_path / "run"
    result = invoke(*eval_args(out, "--tasks", "mem-ARC,mem-GSM8K", "--limit", "5", "--batch-size", "2"))
    assert result.exit_code == 0, result.output
    for needle in ("mem-ARC", "mem-GSM8K", "centred mean", f"results: {out / 'results.json'}"):
        assert needle in result.output
    payload = json.loads((out / "results.json").read_text())
    assert payload["tasks"]["mem-ARC"]["n"] == 5 and payload["model"]["backend"] == "first"
    assert FirstLetter.instances[0].batch_size == 2  # --batch-size reaches a backend that takes it
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["tasks"] == ["mem-ARC", "mem-GSM8K"] and run["settings"]["limit"] == 5


def test_resume_needs_only_the_run_directory(memory_tasks, tmp_path):
    out = tmp_path / "run"
    assert invoke(*eval_args(out, "--tasks", "mem-ARC", "--limit", "6", "--device", "meta")).exit_code == 0
    journal = out / "samples" / "mem-ARC.jsonl"
    rewrite_records(journal, list(read_records(journal).records.values())[:4])
    result = invoke("eval", "--resume", "--output", str(out))
    assert result.exit_code == 0, result.output
    resumed = FirstLetter.instances[-1]
    assert resumed.questions == 2 and resumed.device == "meta"  # settings and options from run.json
    assert len(read_records(journal).records) == 6


def test_resume_with_other_settings_is_refused_and_the_journal_kept(memory_tasks, tmp_path):
    out = tmp_path / "run"
    invoke(*eval_args(out, "--tasks", "mem-ARC", "--limit", "3"))
    before = (out / "samples" / "mem-ARC.jsonl").read_bytes()
    result = invoke("eval", "--resume", "--output", str(out), "--limit", "4")
    assert result.exit_code == 1
    [line] = error_lines(result.output)
    assert "settings differ: limit: 3 (run) vs 4 (now)" in line
    assert (out / "samples" / "mem-ARC.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--limit", "0"], 2, "--limit must be >= 1, got 0"),
        (["--tasks", "mem-ARC,Nope"], 2, "unknown task 'Nope'; registered tasks: ARC-Easy"),
        (["--backend", "nope"], 2, "unknown backend 'nope'; known backends: hf, openai, callable"),
        (["--gguf-file", "model.gguf"], 2, "--gguf-file is not an option of the 'first' backend"),
        (["--k", "1,ten"], 2, "--k '1,ten': expected comma-separated integers"),
        (["--mc-scorer", "best"], 2, "mc_scorer must be one of letter, loglik, generate"),
        (["--tasks", "mem-chat"], 2, "'mem-chat' is training-only"),
        (["--num-samples", "4"], 2, "num_samples > 1 needs sampling: set temperature > 0"),
        (["--backend", "unloadable", "--model", "m"], 1, "cannot load model 'm': no chat template"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(memory_tasks, tmp_path, args, code, message):
    out = tmp_path / "run"
    base = eval_args(out, "--tasks", "mem-ARC", "--limit", "2")
    result = invoke(*base, *args)
    assert result.exit_code == code, result.output
    [line] = error_lines(result.output)
    assert message in line
    assert not out.exists()


def test_resume_without_a_run_is_an_error(tmp_path):
    result = invoke("eval", "--resume")
    assert result.exit_code == 2 and "--resume needs --output RUN_DIR" in error_lines(result.output)[0]
    result = invoke("eval", "--resume", "--output", str(tmp_path / "missing"))
    assert result.exit_code == 1 and "does not exist" in error_lines(result.output)[0]


def test_regrade_rewrites_the_results(memory_tasks, tmp_path):
    out = tmp_path / "run"
    invoke(*eval_args(out, "--tasks", "mem-GSM8K", "--limit", "3"))
    (out / "results.json").unlink()
    result = invoke("regrade", str(out))
    assert result.exit_code == 0, result.output
    assert "mem-GSM8K" in result.output
    assert json.loads((out / "results.json").read_text())["tasks"]["mem-GSM8K"]["n"] == 3


def test_regrade_of_a_missing_run_is_an_error(tmp_path):
    result = invoke("regrade", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "does not exist" in error_lines(result.output)[0]


def test_default_run_directory_is_under_runs(memory_tasks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("eval", "--backend", "first", "--tasks", "mem-ARC", "--limit", "1")
    assert result.exit_code == 0, result.output
    [run_dir] = (tmp_path / "runs").iterdir()
    assert (run_dir / "results.json").is_file()


def test_under_torchrun_every_rank_needs_the_same_output(memory_tasks, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = invoke("eval", "--backend", "first", "--tasks", "mem-ARC", "--limit", "1")
    assert result.exit_code == 2 and "pass --output RUN_DIR" in error_lines(result.output)[0]
