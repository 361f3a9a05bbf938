"""evaluate_model: in-memory tasks (real graders), a deterministic model, the journal as the only source of truth."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from memory_tasks import MemoryARC, MemoryGSM8K

from chattasks.errors import NotSupported, TaskNotEvaluable, UnknownTask
from chattasks.eval.backends.base import GenerationConfig, LetterScores
from chattasks.eval.backends.callable import CallableBackend
from chattasks.eval.journal import RunDirectory, RunDirError, read_records, rewrite_records
from chattasks.eval.plan import fingerprint
from chattasks.eval.regrade import regrade
from chattasks.eval.runner import evaluate_model
from chattasks.eval.scorers.base import reference_of
from chattasks.registry import get_task
from chattasks.tasks.customjson import CustomJSON


def verdict(text: str) -> int:
    """0: answer right, 1: answer wrong, 2: answer nothing usable -- fixed per prompt."""
    return hashlib.sha256(text.encode()).digest()[0] % 3


class Model:
    """A deterministic chat model that knows the answers and uses them as ``verdict`` says."""

    def __init__(self, *tasks) -> None:
        self.answers: dict[str, tuple[str, list[str] | None]] = {}
        for task in tasks:
            for conversation in task:
                prompt = conversation["messages"][0]["content"]
                self.answers[prompt] = (reference_of(task, conversation), conversation.get("letters"))
                if len(self.answers) > 5000:
                    break
        self.calls = 0

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        self.calls += 1
        prompt = messages[-1]["content"]
        answer, letters = self.answers[prompt]
        kind = verdict(prompt)
        if letters:
            wrong = letters[(list(letters).index(answer) + 1) % len(letters)]
            return [answer, wrong, "I am not sure."][kind]
        return [f"So the answer is\n#### {answer}", "#### -12345", "I cannot say."][kind]


def expected_accuracy(task, n: int) -> float:
    return sum(verdict(task[i]["messages"][0]["content"]) == 0 for i in range(n)) / n


@pytest.fixture(scope="module")
def arc():
    return MemoryARC()


@pytest.fixture(scope="module")
def gsm8k():
    return MemoryGSM8K()


@pytest.fixture(scope="module")
def model(arc, gsm8k):
    return Model(arc[:60], gsm8k[:60])


def run(model, **kwargs):
    defaults = {"tasks": ["mem-ARC", "mem-GSM8K"], "limit": 12, "progress": False}
    return evaluate_model(model, **{**defaults, **kwargs})


# ----- scores ---------------------------------------------------------------------------------------
def test_scores_are_the_graders_verdicts(model, arc, gsm8k, memory_tasks, tmp_path):
    results = run(model, output=tmp_path / "run", batch_size=5)
    assert results["mem-ARC"].accuracy == expected_accuracy(arc, 12)
    assert results["mem-GSM8K"].accuracy == expected_accuracy(gsm8k, 12)
    for name, task in (("mem-ARC", arc), ("mem-GSM8K", gsm8k)):
        unusable = sum(verdict(task[i]["messages"][0]["content"]) == 2 for i in range(12))
        assert results[name].failure_count == unusable
        assert results[name].n == 12 and results[name].missing == 0
        assert results[name].fingerprint == fingerprint(task[i] for i in range(12))
    assert results["mem-ARC"].failures.keys() <= {"not_a_letter"}
    assert results["mem-GSM8K"].failures.keys() <= {"no_answer"}
    assert results["mem-ARC"].methods == {"completion": 12}
    assert results.centered_mean == pytest.approx(
        ((results["mem-ARC"].accuracy - 0.25) / 0.75 + results["mem-GSM8K"].accuracy) / 2, abs=0.02
    )


def test_results_json_records_what_was_run(model, memory_tasks, tmp_path):
    run(model, output=tmp_path / "run")
    payload = json.loads((tmp_path / "run" / "results.json").read_text())
    arc = payload["tasks"]["mem-ARC"]
    for key in (
        "accuracy",
        "ci95",
        "n",
        "correct",
        "failures",
        "chance",
        "centered",
        "fingerprint",
        "methods",
    ):
        assert key in arc
    assert payload["model"]["backend"] == "callable" and payload["model"]["model"].endswith("Model")
    assert payload["generation"]["temperature"] == 0.0 and payload["seed"] == 42
    assert payload["mc_scorer"] == "letter" and payload["limit"] == 12
    assert payload["chattasks_version"] and payload["wall_time_s"] > 0
    assert payload["shard"] == {"rank": 0, "world_size": 1} and payload["complete"] is True


def test_every_sample_is_journaled_with_its_prompt(model, gsm8k, memory_tasks, tmp_path):
    run(model, output=tmp_path / "run", tasks=["mem-GSM8K"], limit=4)
    records = read_records(tmp_path / "run" / "samples" / "mem-GSM8K.jsonl").records
    assert sorted(records) == [(i, 0) for i in range(4)]
    first = records[0, 0]
    assert first.prompt == gsm8k[0]["messages"][:1]
    assert first.reference == reference_of(gsm8k, gsm8k[0])
    assert first.task == "mem-GSM8K" and first.method == "generate" and first.time >= 0
    assert first.finished is not None and first.rank == 0


def test_without_output_nothing_is_written(model, memory_tasks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = run(model, tasks=["mem-ARC"], limit=3)
    assert list(tmp_path.iterdir()) == []
    assert [r.index for r in results.samples["mem-ARC"]] == [0, 1, 2]
    assert results.meta["run_dir"] is None


def test_task_objects_are_accepted(model, arc):
    results = evaluate_model(model, [arc[:5]], progress=False)
    assert list(results.tasks) == ["MemoryARC"] and results["MemoryARC"].n == 5


def test_progress_bar_runs_on_stderr(model, memory_tasks, capsys):
    run(model, tasks=["mem-ARC"], limit=3, progress=True)
    assert "mem-ARC" in capsys.readouterr().err


# ----- multiple-choice scorers -------------------------------------------------------------------------
class WithTexts(MemoryARC):
    """ARC whose conversations surely carry the raw question and choice texts (the loglik scorer's input)."""

    def get_example(self, index):
        row = self.rows[index]
        return {
            **super().get_example(index),
            "question": row["question"],
            "choices": list(row["choices"]["text"]),
        }


class LoglikModel:
    """A backend scoring continuations by length only: longer choice, higher sum, lower per character."""

    name = "loglik-fake"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def describe(self):
        return {"backend": self.name, "model": "by-length"}

    def letter_scores(self, prompts, letters):
        raise NotSupported("no letters")

    def loglikelihoods(self, contexts, continuations):
        self.batches.append(len(contexts))
        return [[(-10.0 + len(x) * 0.01, 3) for x in conts] for conts in continuations]

    def generate(self, prompts, config):
        return [["A"] * config.num_samples for _ in prompts]

    def close(self):
        pass


def test_loglik_scorer_reports_acc_and_acc_norm(memory_tasks):
    task = WithTexts()
    backend = LoglikModel()
    results = evaluate_model(backend, [task], limit=10, mc_scorer="loglik", batch_size=4, progress=False)
    result = results["WithTexts"]
    assert backend.batches == [4, 4, 2]
    assert result.methods == {"loglik": 10} and result.acc_norm is not None
    longest = [max(range(len(c["choices"])), key=lambda j: len(c["choices"][j])) for c in task[:10]]
    golds = [c["letters"].index(c["messages"][-1]["content"]) for c in task[:10]]
    assert result.accuracy == sum(g == j for g, j in zip(golds, longest)) / 10


def test_letter_scorer_falls_back_to_generation_and_says_so(memory_tasks):
    results = evaluate_model(LoglikModel(), ["mem-ARC"], limit=4, progress=False)
    assert results["mem-ARC"].methods == {"generate": 4}
    assert all(s.details["fallback_from"] == "letter" for s in results.samples["mem-ARC"])


def test_generate_scorer_parses_free_replies(model, memory_tasks):
    results = run(model, tasks=["mem-ARC"], mc_scorer="generate")
    assert results["mem-ARC"].methods == {"generate": 12}


def test_loglik_on_rows_without_texts_fails_before_any_model_call(memory_tasks):
    class Bare(MemoryARC):
        def get_example(self, index):
            conversation = super().get_example(index)
            return {"messages": conversation["messages"], "letters": conversation["letters"]}

    backend = LoglikModel()
    with pytest.raises(Exception, match="'question' and 'choices'"):
        evaluate_model(backend, [Bare()], limit=3, mc_scorer="loglik")
    assert backend.batches == []


# ----- sampling --------------------------------------------------------------------------------------
class Alternating:
    """Right on even-numbered calls for each prompt, wrong on odd ones."""

    def __init__(self, task):
        self.answers = {c["messages"][0]["content"]: reference_of(task, c) for c in task}
        self.seen: dict[str, int] = {}

    def __call__(self, messages):
        prompt = messages[-1]["content"]
        count = self.seen[prompt] = self.seen.get(prompt, -1) + 1
        return f"#### {self.answers[prompt]}" if count % 2 == 0 else "#### -1"


def test_sampled_runs_report_pass_at_k(gsm8k, memory_tasks, tmp_path):
    generation = GenerationConfig(max_new_tokens=16, temperature=0.7, num_samples=4)
    results = evaluate_model(
        Alternating(gsm8k[:6]),
        ["mem-GSM8K"],
        limit=6,
        generation=generation,
        ks=(1, 2, 4),
        progress=False,
    )
    result = results["mem-GSM8K"]
    assert result.samples == 24 and result.accuracy == 0.5
    assert result.pass_at_k == {"pass@1": 0.5, "pass@2": pytest.approx(5 / 6), "pass@4": 1.0}


def test_a_partly_journaled_question_gets_only_its_missing_samples(gsm8k, memory_tasks, tmp_path):
    generation = GenerationConfig(max_new_tokens=16, temperature=0.7, num_samples=3)
    out = tmp_path / "run"
    model = Alternating(gsm8k[:2])
    evaluate_model(model, ["mem-GSM8K"], limit=2, generation=generation, output=out, progress=False)
    journal = out / "samples" / "mem-GSM8K.jsonl"
    kept = [r for r in read_records(journal).records.values() if (r.index, r.sample) != (1, 2)]
    rewrite_records(journal, kept)
    results = evaluate_model(
        model,
        ["mem-GSM8K"],
        limit=2,
        generation=generation,
        output=out,
        resume=True,
        progress=False,
    )
    records = read_records(journal)
    assert records.duplicates == 0 and len(records.records) == 6
    assert results["mem-GSM8K"].samples == 6


# ----- resume ------------------------------------------------------------------------------------------
def test_resume_does_only_what_is_missing(model, memory_tasks, tmp_path):
    out = tmp_path / "run"
    first = run(model, output=out)
    journal = out / "samples" / "mem-ARC.jsonl"
    rewrite_records(journal, list(read_records(journal).records.values())[:7])
    fresh = Model()
    fresh.answers = model.answers
    again = run(fresh, output=out, resume=True)
    assert fresh.calls == 5
    assert again.to_dict()["tasks"] == first.to_dict()["tasks"]
    untouched = Model()
    untouched.answers = model.answers
    run(untouched, output=out, resume=True)
    assert untouched.calls == 0


def test_resume_refuses_different_settings_and_keeps_the_journal(model, memory_tasks, tmp_path):
    out = tmp_path / "run"
    run(model, output=out)
    before = (out / "samples" / "mem-ARC.jsonl").read_bytes()
    with pytest.raises(RunDirError, match=r"limit: 12 \(run\) vs 13 \(now\)"):
        run(model, output=out, resume=True, limit=13)
    with pytest.raises(RunDirError, match="mc_scorer"):
        run(model, output=out, resume=True, mc_scorer="generate")
    assert (out / "samples" / "mem-ARC.jsonl").read_bytes() == before


def test_a_fresh_run_will_not_overwrite_a_run(model, memory_tasks, tmp_path):
    run(model, output=tmp_path / "run", limit=2)
    with pytest.raises(RunDirError, match="already holds a run; continue it with --resume"):
        run(model, output=tmp_path / "run", limit=2)


def test_resume_needs_a_run(model, memory_tasks, tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        run(model, output=tmp_path / "nope", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="holds no run"):
        run(model, output=tmp_path / "empty", resume=True)


def test_a_backend_failure_keeps_finished_batches(model, memory_tasks, tmp_path):
    out = tmp_path / "run"

    def flaky(messages):
        if flaky.calls == 7:
            raise ConnectionError("server went away")
        flaky.calls += 1
        return model(messages)

    flaky.calls = 0
    with pytest.raises(ConnectionError):
        run(flaky, output=out, tasks=["mem-ARC"], batch_size=3, label="flaky")
    assert len(read_records(out / "samples" / "mem-ARC.jsonl").records) == 6
    results = run(model, output=out, tasks=["mem-ARC"], batch_size=3, resume=True, label="flaky")
    assert results["mem-ARC"].n == 12


# ----- shards ------------------------------------------------------------------------------------------
class Barrier:
    def __init__(self, rank, world_size):
        self.rank, self.world_size, self.waits = rank, world_size, 0

    def barrier(self):
        self.waits += 1


def test_shards_share_a_run_and_merge_to_the_unsharded_result(model, memory_tasks, tmp_path):
    whole = run(model, output=tmp_path / "whole")
    out = tmp_path / "sharded"
    partial = run(model, output=out, shard=(0, 2))
    assert not partial.complete and partial["mem-ARC"].missing == 6
    assert {r.index % 2 for r in partial.samples["mem-ARC"]} == {0}
    hook = Barrier(1, 2)
    run(model, output=out, distributed=hook)
    assert hook.waits == 1
    merged = regrade(out)
    assert merged.complete
    for name in ("mem-ARC", "mem-GSM8K"):
        assert merged[name].accuracy == whole[name].accuracy
        assert merged[name].fingerprint == whole[name].fingerprint


def test_rank_zero_writes_results_after_the_barrier(model, memory_tasks, tmp_path):
    out = tmp_path / "run"
    run(model, output=out, distributed=Barrier(1, 2))
    assert not (out / "results.json").exists()
    results = run(model, output=out, distributed=Barrier(0, 2))
    assert results.complete and json.loads((out / "results.json").read_text())["complete"] is True


# ----- regrade -----------------------------------------------------------------------------------------
def test_regrade_rescores_the_journal_without_the_model(model, memory_tasks, tmp_path):
    out = tmp_path / "run"
    first = run(model, output=out)
    journal = out / "samples" / "mem-GSM8K.jsonl"
    records = [
        record.replace(score=1.0) for record in read_records(journal).records.values()
    ]  # a grader bug, say
    rewrite_records(journal, records + records[:2])  # and two duplicate lines
    again = regrade(out)
    assert again["mem-GSM8K"].accuracy == first["mem-GSM8K"].accuracy
    assert read_records(journal).duplicates == 0
    assert json.loads((out / "results.json").read_text())["regraded"]


def test_regrade_refuses_changed_data(model, memory_tasks, tmp_path):
    out = tmp_path / "run"
    run(model, output=out, tasks=["mem-ARC"], limit=3)
    payload = RunDirectory(out).read_run()
    payload["fingerprints"]["mem-ARC"] = "0" * 64
    RunDirectory(out).write_run(payload)
    with pytest.raises(RunDirError, match="data of mem-ARC changed"):
        regrade(out)


# ----- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [0, -3, True, 2.5, "3"])
def test_limit_must_be_a_positive_integer(model, limit):
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        run(model, limit=limit)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mc_scorer": "best"}, "mc_scorer must be one of letter, loglik, generate"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"ks": (0,)}, "ks must be integers >= 1"),
        ({"shard": (2, 2)}, "shard must be"),
        ({"shard": (1, 2)}, "a sharded run needs output="),
        ({"tasks": []}, "tasks is empty"),
        ({"tasks": ["mem-ARC", "MEM-arc"]}, "named more than once"),
    ],
)
def test_bad_arguments_are_one_line_errors(model, memory_tasks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(model, **kwargs)


def test_unknown_and_training_only_tasks_fail_before_the_model_loads(memory_tasks, fixtures_dir):
    with pytest.raises(UnknownTask, match="unknown task 'ARC-Medium'"):
        evaluate_model("no/such-model", ["ARC-Medium"], backend="nope")
    training_only = CustomJSON(fixtures_dir / "customjson" / "identity.jsonl")
    with pytest.raises(TaskNotEvaluable, match="'CustomJSON' is training-only"):
        evaluate_model("no/such-model", [training_only], backend="nope")


def test_backend_options_do_not_apply_to_a_backend_object(memory_tasks):
    with pytest.raises(ValueError, match="backend= and backend options"):
        evaluate_model(CallableBackend(lambda m: "A"), ["mem-ARC"], backend="hf")


def test_unknown_backend_names_the_known_ones(memory_tasks):
    with pytest.raises(Exception, match="unknown backend 'nope'; known backends: hf, openai, callable"):
        evaluate_model("some-model", ["mem-ARC"], backend="nope", limit=1)


def test_letter_scores_method_is_recorded(memory_tasks):
    class Logits:
        name = "fake-logits"

        def describe(self):
            return {"backend": self.name}

        def letter_scores(self, prompts, letters):
            return [LetterScores({x: float(-i) for i, x in enumerate(ls)}, "logits") for ls in letters]

        def loglikelihoods(self, contexts, continuations):
            raise NotSupported("no")

        def generate(self, prompts, config):
            raise NotSupported("no")

        def close(self):
            pass

    results = evaluate_model(Logits(), ["mem-ARC"], limit=5, progress=False)
    assert results["mem-ARC"].methods == {"logits": 5}
    assert results.meta["model"]["backend"] == "fake-logits"


# ----- HumanEval through the sandbox ---------------------------------------------------------------
def test_humaneval_is_graded_in_the_sandbox_with_timeouts_counted_apart(hub_dir):
    from chattasks.errors import SandboxUnavailable

    try:
        task = get_task("HumanEval", timeout=1.0, data_dir=hub_dir)
        solutions = {c["messages"][0]["content"]: c["messages"][-1]["content"] for c in task[:3]}
        prompts = list(solutions)
        replies = {
            prompts[0]: solutions[prompts[0]],  # the canonical solution: passes
            prompts[1]: "def something_else():\n    return 1\n",  # wrong: fails its tests
            prompts[2]: prompts[2] + "    while True:\n        pass\n",  # never ends: a timeout
        }
        results = evaluate_model(
            lambda messages: replies[messages[-1]["content"]], [task], limit=3, progress=False
        )
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox here: {exc}")
    result = results["HumanEval"]
    assert result.accuracy == pytest.approx(1 / 3)
    assert result.failures == {"timeout": 1}
    assert [s.details["status"] for s in results.samples["HumanEval"]] == ["passed", "failed", "timeout"]


# ----- contamination -----------------------------------------------------------------------------------
def planted_report(tmp_path, gsm8k, rows):
    """A contamination report of a CustomJSON file holding the questions of ``rows`` of mem-GSM8K."""
    from chattasks.contamination import check_contamination

    lines = [
        json.dumps(
            [
                {"role": "user", "content": gsm8k[i]["messages"][0]["content"]},
                {"role": "assistant", "content": "ok"},
            ]
        )
        for i in rows
    ]
    (tmp_path / "leak.jsonl").write_text("\n".join(lines) + "\n")
    report = check_contamination(CustomJSON(tmp_path / "leak.jsonl"), ["mem-GSM8K"], n=13)
    path = tmp_path / "contamination.json"
    report.to_json(path)
    return path


def test_contaminated_rows_are_left_out_and_said_so(model, gsm8k, memory_tasks, tmp_path):
    report = planted_report(tmp_path, gsm8k, [2, 5, 40])
    out = tmp_path / "run"
    results = run(model, tasks=["mem-GSM8K"], limit=12, output=out, exclude_contaminated=report)
    from chattasks.contamination import contaminated_indices

    found = contaminated_indices(report, "mem-GSM8K")
    assert {2, 5, 40} <= found and min(found) == 2
    clean = [i for i in range(12) if i not in found]
    assert [r.index for r in results.samples["mem-GSM8K"]] == clean
    result = results["mem-GSM8K"]
    assert result.n == result.expected == len(clean) == 10 and result.missing == 0
    assert result.accuracy == sum(verdict(gsm8k[i]["messages"][0]["content"]) == 0 for i in clean) / 10
    assert results.meta["excluded"] == {"mem-GSM8K": 2}  # rows past the limit are not counted
    stored = RunDirectory(out).read_run()
    assert stored["settings"]["excluded"] == {"mem-GSM8K": [2, 5]} and stored["exclude_contaminated"]
    assert regrade(out)["mem-GSM8K"].n == 10  # regrading keeps them out
    with pytest.raises(RunDirError, match="excluded"):  # resuming without the report changes the run
        run(model, tasks=["mem-GSM8K"], limit=12, output=out, resume=True)


def test_a_report_made_on_other_data_is_refused(model, gsm8k, memory_tasks, tmp_path):
    from chattasks.errors import ReportError

    report = planted_report(tmp_path, gsm8k, [1])
    payload = json.loads(report.read_text())
    payload["tasks"]["mem-GSM8K"]["items"] += 1
    report.write_text(json.dumps(payload))
    with pytest.raises(ReportError, match="checked on other data"):
        run(model, tasks=["mem-GSM8K"], limit=4, exclude_contaminated=report)


def test_results_record_tokens_per_second_for_backends_that_count_them(memory_tasks):
    class Counting(CallableBackend):
        """A callable backend that says it generated 7 tokens in 0.5 s per reply."""

        tokens_generated, generation_seconds = 0, 0.0

        def generate(self, prompts, config):
            self.tokens_generated += 7 * len(prompts) * config.num_samples
            self.generation_seconds += 0.5 * len(prompts) * config.num_samples
            return super().generate(prompts, config)

    results = evaluate_model(Counting(lambda m: "#### 1"), ["mem-GSM8K", "mem-ARC"], limit=4, progress=False)
    assert results.meta["throughput"] == {
        "mem-GSM8K": {"tokens": 28, "seconds": 2.0, "tokens_per_second": 14.0}
    }
