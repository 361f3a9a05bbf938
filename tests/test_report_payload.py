"""chattasks.report.payload: the page's data is the journals, compact and safe inside <script>."""

from __future__ import annotations

import json

from report_runs import MEMORY_TASKS, make_run

from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import Failure
from chattasks.report import load_runs, pair_runs
from chattasks.report.payload import embed_json, report_payload


def test_embedded_json_cannot_end_the_script_element():
    payload = {"r": ["</script><script>alert(1)</script>", "<!-- x", "a < b"]}
    text = embed_json(payload)
    assert "<" not in text
    assert json.loads(text) == payload


def test_columns_hold_every_record_and_prompts_are_stored_once(memory_tasks, tmp_path):
    paths = [make_run(tmp_path / "a", 1), make_run(tmp_path / "b", 2)]
    runs = load_runs(paths)
    data = json.loads(embed_json(report_payload(runs, pair_runs(runs)[0])))
    assert [run["tasks"] for run in data["runs"]] == [MEMORY_TASKS, MEMORY_TASKS]
    distinct = set()
    for number, path in enumerate(paths):
        for task in MEMORY_TASKS:
            records = sorted(RunDirectory(path).read(task).records.values(), key=lambda r: r.key)
            columns = data["samples"][number][task]
            assert columns["i"] == [r.index for r in records]
            assert columns["r"] == [r.response for r in records]
            assert columns["x"] == [r.extracted for r in records]
            assert columns["g"] == [r.reference for r in records]
            assert columns["s"] == [r.score for r in records]
            failures = [None if f < 0 else data["kinds"][f] for f in columns["f"]]
            assert failures == [None if r.failure is None else r.failure.value for r in records]
            assert [data["methods"][m] for m in columns["m"]] == [r.method for r in records]
            assert [data["prompts"][p] for p in columns["p"]] == [r.prompt for r in records]
            distinct.update(json.dumps(r.prompt) for r in records)
    assert len(data["prompts"]) == len(distinct)  # both runs asked the same questions: stored once
    assert data["kinds"] == [kind.value for kind in Failure]


def test_prompts_with_tool_call_parts_are_kept_whole(tmp_path):
    from report_runs import ToolChat

    paths = [make_run(tmp_path / "a", 1, [ToolChat(n=3)]), make_run(tmp_path / "b", 2, [ToolChat(n=3)])]
    runs = load_runs(paths)
    data = report_payload(runs, [])
    records = runs[0].samples["ToolChat"]
    assert len(data["prompts"]) == 3
    assert [data["prompts"][p] for p in data["samples"][1]["ToolChat"]["p"]] == [r.prompt for r in records]
    assert data["prompts"][0][1]["content"][1] == {"type": "python", "text": "12*7"}
