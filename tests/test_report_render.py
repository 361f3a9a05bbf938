"""chattasks.report.render: the written report, opened in a real headless Chromium.

Runs come from ``evaluate_model`` with rule-following students on the in-memory tasks
(tests/report_runs.py); every check reads the page as a person sees it and compares it with
results.json or the journals, read independently here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import report_browser
from report_runs import MEMORY_TASKS, ToolChat, make_run

from chattasks.eval.journal import RunDirectory
from chattasks.report import write_report
from chattasks.report.comparison import fmt_p

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.fixture(scope="module")
def browser():
    """The system Chromium; skipped without it, except under CI where it must be there."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install 'chattasks[test]')"
    else:
        missing = None if report_browser.chromium_path() else "no system Chromium (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    with report_browser.launch() as launched:
        yield launched


@pytest.fixture(scope="module", autouse=True)
def _memory_tasks():
    """mem-ARC, mem-MMLU and mem-GSM8K registered for every test here."""
    import memory_tasks

    memory_tasks.register()
    yield
    memory_tasks.unregister()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the in-memory tasks by different students (so some questions flip)."""
    folder = tmp_path_factory.mktemp("runs")
    return [make_run(folder / "first", 1), make_run(folder / "second", 2)]


@pytest.fixture(scope="module")
def single(runs):
    return write_report([runs[0]])


@pytest.fixture(scope="module")
def pair(runs, tmp_path_factory):
    return write_report(runs, tmp_path_factory.mktemp("out") / "pair.html")


def journal(run: Path, task: str):
    return list(RunDirectory(run).read(task).records.values())


def visible_count(page) -> int:
    return int(page.locator("#sample-count").get_attribute("data-count"))


def list_indexes(page, list_id: str, attribute: str = "data-index") -> list[tuple[str | None, int]]:
    """Every row of a virtual list, collected by scrolling it from top to bottom as a person would."""
    seen: dict[int, tuple[str | None, int]] = {}
    box = page.locator(f"#{list_id}")
    box.evaluate("node => { node.scrollTop = 0; }")
    while True:
        page.wait_for_timeout(30)
        for row in box.locator(".row").all():
            seen[int(row.get_attribute("data-pos"))] = (
                row.get_attribute("data-task"),
                int(row.get_attribute(attribute)),
            )
        at_end = box.evaluate(
            "node => { const end = node.scrollTop + node.clientHeight >= node.scrollHeight - 1;"
            " node.scrollTop += node.clientHeight; return end; }"
        )
        if at_end:
            return [seen[pos] for pos in sorted(seen)]


def test_task_table_numbers_equal_results_json(browser, runs, single):
    results = json.loads((runs[0] / "results.json").read_text())
    with report_browser.open_report(browser, single) as report:
        table = report.page.locator("table.tasks[data-run='0']")
        assert table.locator("tbody tr").count() == len(results["tasks"]) == len(MEMORY_TASKS)
        for name, expected in results["tasks"].items():
            row = table.locator(f"tr[data-key='{name}']")

            def cell(field, row=row):
                return row.locator(f"td[data-field='{field}']").inner_text()

            assert int(cell("n").replace(",", "")) == expected["n"]
            assert float(cell("accuracy")) == pytest.approx(expected["accuracy"], abs=5e-5)
            low, high = (float(x) for x in cell("ci95").split("–"))
            assert (low, high) == pytest.approx(expected["ci95"], abs=5e-4)
            assert float(cell("centered")) == pytest.approx(expected["centered"], abs=5e-5)
            for kind, count in expected["failures"].items():
                assert int(cell(f"failures.{kind}")) == count
        shown = table.locator("tfoot td[data-field='centered_mean']").inner_text()
        assert float(shown) == pytest.approx(results["centered_mean"], abs=5e-5)
        assert any(results["tasks"][name]["failures"] for name in results["tasks"])  # the test sees failures
        assert report.errors == []


def test_header_shows_model_settings_fingerprints_and_times(browser, runs, single):
    results = json.loads((runs[0] / "results.json").read_text())
    with report_browser.open_report(browser, single) as report:
        settings = report.page.locator("table.settings")

        def value(name):
            return settings.locator(f"tr[data-key='{name}'] td").first.inner_text()

        assert value("model") == results["model"]["model"] == "report_runs.student1"
        assert value("backend") == "callable"
        assert "max_new_tokens=512" in value("decoding") and "seed=42" in value("decoding")
        assert value("chattasks version") == results["chattasks_version"]
        assert value("finished") == results["finished"]
        assert value("wall time").endswith(" s")
        for name, task in results["tasks"].items():
            assert value(f"data: {name}") == task["fingerprint"][:12]


def test_no_request_leaves_the_file(browser, single, pair):
    for path in (single, pair):
        with report_browser.open_report(browser, path) as report:
            report.page.locator("#sample-list .row").nth(2).click()
            report.page.fill("#sample-search", "marbles")
            report.page.wait_for_timeout(300)
            assert report.requests == [report.url]
            assert report.outside_requests == []


def test_filters_change_the_visible_sample_count(browser, runs, single):
    records = {task: journal(runs[0], task) for task in MEMORY_TASKS}
    everything = sum(len(r) for r in records.values())
    with report_browser.open_report(browser, single) as report:
        page = report.page
        assert visible_count(page) == everything
        page.select_option("#sample-outcome", "correct")
        assert visible_count(page) == sum(r.correct for rs in records.values() for r in rs)
        page.select_option("#sample-task", "mem-GSM8K")
        assert visible_count(page) == sum(r.correct for r in records["mem-GSM8K"])
        page.select_option("#sample-outcome", "wrong")
        assert visible_count(page) == sum(not r.correct and r.failure is None for r in records["mem-GSM8K"])
        page.select_option("#sample-outcome", "f:no_answer")
        no_answer = [r.index for r in records["mem-GSM8K"] if str(r.failure) == "no_answer"]
        assert 0 < visible_count(page) == len(no_answer)
        assert [index for _, index in list_indexes(page, "sample-list")] == no_answer
        page.select_option("#sample-task", "")
        page.select_option("#sample-outcome", "f:not_a_letter")
        assert visible_count(page) == sum(
            str(r.failure) == "not_a_letter" for rs in records.values() for r in rs
        )
        assert page.locator("#sample-count").inner_text() == f"{visible_count(page)} of {everything} samples"


def test_search_finds_a_known_sample(browser, runs, single):
    records = [r for task in MEMORY_TASKS for r in journal(runs[0], task)]
    term = "Mia has 17 marbles"
    wanted = [(r.task, r.index) for r in records if term.lower() in r.prompt[-1]["content"].lower()]
    assert len(wanted) == 1
    with report_browser.open_report(browser, single) as report:
        page = report.page
        page.fill("#sample-search", term)
        page.press("#sample-search", "Enter")
        assert visible_count(page) == 1
        assert list_indexes(page, "sample-list") == wanted
        detail = page.locator("#sample-detail")
        assert (detail.get_attribute("data-task"), int(detail.get_attribute("data-index"))) == wanted[0]
        assert term in detail.inner_text()
        page.fill("#sample-search", "no such words anywhere")
        page.press("#sample-search", "Enter")
        assert visible_count(page) == 0
        assert "No sample matches" in page.locator("#sample-list").inner_text()


def test_a_sample_shows_its_conversation_response_and_answer(browser, runs, single):
    record = journal(runs[0], "mem-ARC")[4]
    with report_browser.open_report(browser, single) as report:
        page = report.page
        page.select_option("#sample-task", "mem-ARC")
        page.locator("#sample-list .row[data-index='4']").click()
        detail = page.locator("#sample-detail")
        assert detail.locator(".turn.user pre").inner_text() == record.prompt[0]["content"]
        assert detail.locator(".response-text").inner_text() == record.response
        assert detail.locator(".extracted b").inner_text() == (record.extracted or "—")
        assert detail.locator(".reference b").inner_text() == record.reference
        assert ("correct" if record.correct else "wrong") in detail.locator(".verdict").inner_text()


def test_keyboard_moves_the_selection(browser, runs, single):
    order = [(task, r.index) for task in MEMORY_TASKS for r in journal(runs[0], task)]
    with report_browser.open_report(browser, single) as report:
        page = report.page
        detail = page.locator("#sample-detail")

        def selected():
            return detail.get_attribute("data-task"), int(detail.get_attribute("data-index"))

        assert selected() == order[0]
        page.locator("#sample-list").focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("j")
        assert selected() == order[2]
        page.keyboard.press("k")
        assert selected() == order[1]
        page.keyboard.press("End")
        assert selected() == order[-1]
        assert page.locator("#sample-list .row.selected").get_attribute("data-index") == str(order[-1][1])
        page.keyboard.press("Home")
        assert selected() == order[0]
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "sample-search"


def test_the_flipped_view_lists_exactly_the_flipped_questions(browser, runs, pair):
    with report_browser.open_report(browser, pair) as report:
        page = report.page
        for number, task in enumerate(MEMORY_TASKS):
            first = {r.index: r.correct for r in journal(runs[0], task)}
            second = {r.index: r.correct for r in journal(runs[1], task)}
            flipped = sorted(i for i in first if first[i] != second[i])
            gained = [i for i in flipped if second[i]]
            page.select_option("#flip-task", str(number))
            assert int(page.locator("#flip-count").get_attribute("data-count")) == len(flipped)
            assert [index for _, index in list_indexes(page, "flip-list")] == flipped
            page.select_option("#flip-kind", "gained")
            assert [index for _, index in list_indexes(page, "flip-list")] == gained
            page.select_option("#flip-kind", "all")
        assert flipped  # the students disagree somewhere
        page.locator("#flip-list .row").first.click()
        sides = page.locator("#flip-detail .side")
        assert sides.count() == 2
        assert sides.nth(0).locator("h4").first.inner_text().lower() == "first"
        assert sides.nth(1).locator("h4").first.inner_text().lower() == "second"


def test_the_comparison_table_counts_gains_and_losses(browser, runs, pair):
    with report_browser.open_report(browser, pair) as report:
        for task in MEMORY_TASKS:
            first = {r.index: r.correct for r in journal(runs[0], task)}
            second = {r.index: r.correct for r in journal(runs[1], task)}
            row = report.page.locator(f"table.comparison tr[data-key='{task}|1']")
            assert int(row.locator("td[data-field='gained']").inner_text()) == sum(
                second[i] and not first[i] for i in first
            )
            assert int(row.locator("td[data-field='lost']").inner_text()) == sum(
                first[i] and not second[i] for i in first
            )
            delta = float(row.locator("td[data-field='delta']").inner_text())
            assert delta == pytest.approx((sum(second.values()) - sum(first.values())) / len(first), abs=5e-5)
            gained = sum(second[i] and not first[i] for i in first)
            lost = sum(first[i] and not second[i] for i in first)
            exact = scipy_stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
            assert row.locator("td[data-field='p']").inner_text() == fmt_p(exact)
        overall = report.page.locator("table.comparison tfoot tr[data-key='overall|1']")
        assert overall.locator("td[data-field='task']").inner_text() == "centred mean"
        assert " to " in overall.locator("td[data-field='ci95']").inner_text()


def test_subjects_table_matches_the_journal_and_sorts(browser, runs, single):
    records = journal(runs[0], "mem-MMLU")
    subjects = sorted({r.group for r in records})
    with report_browser.open_report(browser, single) as report:
        page = report.page
        table = page.locator("#groups table.groups")
        assert [row.get_attribute("data-key") for row in table.locator("tbody tr").all()] == subjects
        for subject in subjects:
            mine = [r for r in records if r.group == subject]
            row = table.locator(f"tr[data-key='{subject}']")
            assert int(row.locator("td[data-field='run0.n']").inner_text()) == len(mine)
            shown = float(row.locator("td[data-field='run0.accuracy']").inner_text())
            assert shown == pytest.approx(sum(r.correct for r in mine) / len(mine), abs=5e-5)
        table.locator("th", has_text="accuracy").click()
        values = [float(x) for x in table.locator("td[data-field='run0.accuracy']").all_inner_texts()]
        assert values == sorted(values)
        table.locator("th", has_text="accuracy").click()
        values = [float(x) for x in table.locator("td[data-field='run0.accuracy']").all_inner_texts()]
        assert values == sorted(values, reverse=True)


def test_the_list_keeps_only_visible_rows_in_the_page(browser, tmp_path):
    from memory_tasks import MemoryMMLU

    run = make_run(tmp_path / "big", 3, [MemoryMMLU(n=3000)])
    with report_browser.open_report(browser, write_report([run])) as report:
        page = report.page
        assert visible_count(page) == 3000
        assert page.locator("#sample-list .row").count() < 80
        page.locator("#sample-list").focus()
        page.keyboard.press("End")
        assert page.locator("#sample-detail").get_attribute("data-index") == "2999"
        assert page.locator("#sample-list .row[data-index='2999']").is_visible()
        assert page.locator("#sample-list .row").count() < 80


def test_model_text_is_shown_as_text_never_run(browser, tmp_path):
    from chattasks import evaluate_model

    hostile = '</script><script>document.title="owned"</script><img src="http://example.com/x.png">'
    evaluate_model(lambda messages: hostile, ["mem-GSM8K"], limit=3, output=tmp_path / "run", progress=False)
    with report_browser.open_report(browser, write_report([tmp_path / "run"])) as report:
        page = report.page
        assert page.title().startswith("chattasks report")
        assert page.locator("#sample-detail .response-text").inner_text() == hostile
        assert page.locator("img").count() == 0
        assert report.outside_requests == []


def test_tool_call_parts_are_shown_as_parts(browser, tmp_path):
    run = make_run(tmp_path / "tools", 4, [ToolChat(n=4)])
    with report_browser.open_report(browser, write_report([run])) as report:
        turn = report.page.locator("#sample-detail .turn.assistant")
        assert turn.locator(".part.python pre").inner_text() == "12*7"
        assert turn.locator(".part.python_output pre").inner_text() == "84"
        assert "tool call (python)" in turn.inner_text()


def test_humaneval_samples_show_the_sandbox_status_and_output(browser, hub_dir, tmp_path):
    from chattasks import evaluate_model
    from chattasks.tasks.humaneval import HumanEval

    task = HumanEval(data_dir=hub_dir)
    solutions = {}
    for number, conversation in enumerate(task[:3]):
        solution = conversation["messages"][-1]["content"]
        solutions[conversation["messages"][0]["content"]] = (
            f"```python\n{solution}\nprint('checked {number}')\n```"
            if number != 1
            else "```python\nraise ValueError('no idea')\n```"
        )
    evaluate_model(lambda m: solutions[m[-1]["content"]], [task[:3]], output=tmp_path / "he", progress=False)
    records = list(RunDirectory(tmp_path / "he").read("HumanEval").records.values())
    with report_browser.open_report(browser, write_report([tmp_path / "he"])) as report:
        page = report.page
        for record in records:
            page.locator(f"#sample-list .row[data-index='{record.index}']").click()
            detail = page.locator("#sample-detail")
            assert detail.locator(".sandbox-status").inner_text() == record.details["status"]
            if record.details["stdout"]:
                assert detail.locator(".sandbox-stdout").inner_text() == record.details["stdout"]
            if record.details["stderr"]:
                assert "no idea" in detail.locator(".sandbox-stderr").inner_text()
        assert sorted(r.details["status"] for r in records) == ["failed", "passed", "passed"]


def test_a_screenshot_of_the_report_is_not_blank(browser, pair, tmp_path):
    with report_browser.open_report(browser, pair) as report:
        png = report_browser.screenshot(report, tmp_path / "report.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "report.png").read_bytes() == png
    assert report_browser.distinct_colours(browser, png) > 100
