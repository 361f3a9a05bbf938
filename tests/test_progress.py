"""The progress display: a bar per task with its running accuracy and, when the backend has one, its status."""

from __future__ import annotations

from chattasks.eval.progress import EvalProgress


def test_the_bar_shows_accuracy_and_the_backends_status(capsys):
    calls = []

    def status() -> str:
        calls.append(1)
        return f"concurrency {len(calls)}/16, 0 retries"

    with EvalProgress(True, status=status) as bar:
        bar.add_task("mem-ARC", total=4, done=1, score_sum=1.0)
        bar.advance("mem-ARC", 3, 1.0)
    err = capsys.readouterr().err
    assert "mem-ARC" in err and "acc 0.500" in err and "/16, 0" in err and calls  # rich may wrap the rest


def test_a_failing_status_never_stops_the_display(capsys):
    def broken() -> str:
        raise RuntimeError("server gone")

    with EvalProgress(True, status=broken) as bar:
        bar.add_task("t", total=1, done=0, score_sum=0.0)
        bar.advance("t", 1, 1.0)
    assert "acc 1.000" in capsys.readouterr().err


def test_disabled_progress_prints_nothing(capsys):
    with EvalProgress(False, status=lambda: "x") as bar:
        bar.add_task("t", total=1, done=0, score_sum=0.0)
        bar.advance("t", 1, 1.0)
    assert capsys.readouterr().err == ""
