"""Time ``chattasks view`` on a full MMLU test run (14,042 samples) and on a 3-run comparison.

    python bench/bench_view.py [--data-dir ../shared/data/hub] [--repeat 3] [--keep DIR]

Three runs of MMLU all/test (the real rows from ``--data-dir``; without them the in-memory MMLU
stand-in with 14,042 rows, whose prompts are much shorter) are made with ``evaluate_model`` and
a callable model answering a letter drawn from a hash of the question (a few replies unreadable,
so failures occur); each run's journal is what ``chattasks eval`` writes. Then, best of
``--repeat``:

- ``floor``: read the journals with ``read_records`` (what any report of them must do first);
- ``view``: ``write_report`` of one run and of the 3-run comparison (goal: under 5 s, under 20 MB);
- in headless Chromium (``tests/report_browser.py``): first contentful paint and the time until
  the page script is ready, and how long the sample filter and a search over every sample take
  (goal for the first paint: under 2 s; measured, never asserted in tests).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from cpu_info import cpu_line  # noqa: E402

from chattasks.eval.journal import read_records  # noqa: E402
from chattasks.eval.runner import evaluate_model  # noqa: E402
from chattasks.report import write_report  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hub"
GOALS = {"seconds": 5.0, "megabytes": 20.0, "first_paint_s": 2.0}


def guesser(seed: int):
    """A model answering each question with a letter drawn from a hash of (seed, question)."""

    def answer(messages: list[dict[str, Any]]) -> str:
        roll = zlib.crc32(f"{seed}:{messages[-1]['content']}".encode())
        return "I do not know." if roll % 50 == 0 else "ABCD"[roll % 4]

    answer.__name__ = answer.__qualname__ = f"guesser{seed}"
    return answer


def make_runs(folder: Path, data_dir: Path) -> tuple[list[Path], str]:
    """Three runs of MMLU all/test; what data they used."""
    if (data_dir / "cais" / "mmlu").is_dir():
        from chattasks.tasks.mmlu import MMLU

        task, source = MMLU("all", "test", data_dir=data_dir), f"MMLU all/test from {data_dir}"
    else:
        from memory_tasks import MemoryMMLU

        task, source = MemoryMMLU(n=14_042), "in-memory MMLU stand-in (no local MMLU found; short prompts)"
    runs = []
    for seed in (1, 2, 3):
        path = folder / f"mmlu-{seed}"
        if not (path / "results.json").is_file():  # --keep DIR reuses the runs made there before
            evaluate_model(guesser(seed), [task], output=path, progress=False)
        runs.append(path)
    return runs, source


def floor(runs: list[Path]) -> int:
    """Read every journal of ``runs`` (the records a report shows); how many records."""
    return sum(
        len(read_records(journal).records) for run in runs for journal in (run / "samples").glob("*.jsonl")
    )


def best(repeat: int, work) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        times.append(time.perf_counter() - start)
    return min(times), value


def browser_numbers(path: Path) -> dict[str, float]:
    """First contentful paint, script ready, filter and search times of the report in headless Chromium."""
    import report_browser

    with report_browser.launch() as browser, report_browser.open_report(browser, path) as report:
        page = report.page
        numbers = page.evaluate(
            """() => {
                const paint = performance.getEntriesByName("first-contentful-paint")[0];
                const ready = performance.getEntriesByName("chattasks-ready")[0];
                const time = (work) => { const t = performance.now(); work(); return performance.now() - t; };
                const outcome = document.getElementById("sample-outcome");
                const search = document.getElementById("sample-search");
                const filter = time(() => { outcome.value = "wrong"; outcome.dispatchEvent(new Event("change")); });
                outcome.value = "all";
                const find = time(() => {
                    search.value = "velocity";
                    search.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
                });
                return { paint: paint ? paint.startTime : NaN, ready: ready.startTime, filter: filter, search: find,
                         rows: document.querySelectorAll("#sample-list .row").length };
            }"""
        )
        numbers["outside_requests"] = len(report.outside_requests)
    return numbers


def report_line(name: str, seconds: float, floor_seconds: float, path: Path, samples: int) -> None:
    megabytes = path.stat().st_size / 1e6
    met = seconds < GOALS["seconds"] and megabytes < GOALS["megabytes"]
    print(
        f"{name:<22} {seconds:6.2f} s  {seconds / floor_seconds:5.2f}x floor  {megabytes:6.1f} MB  "
        f"{samples:,} samples  goal <{GOALS['seconds']:g} s, <{GOALS['megabytes']:g} MB: {'met' if met else 'NOT met'}"
    )


def main() -> int:
    """Make the runs, time the floor and the reports, measure them in Chromium; print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA, help="Hub-layout folder holding cais/mmlu"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timings of each; the fastest counts")
    parser.add_argument("--keep", type=Path, help="make (or reuse) the runs and reports in this folder")
    args = parser.parse_args()
    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        started = time.perf_counter()
        runs, source = make_runs(folder, args.data_dir)
        samples = sum(len(read_records(p).records) for p in (runs[0] / "samples").glob("*.jsonl"))
        print(f"{source}: 3 runs of {samples:,} samples made in {time.perf_counter() - started:.1f} s")
        one_floor, _ = best(args.repeat, lambda: floor(runs[:1]))
        three_floor, _ = best(args.repeat, lambda: floor(runs))
        print(f"{'floor (1 run)':<22} {one_floor:6.2f} s   reading the journals (read_records)")
        print(f"{'floor (3 runs)':<22} {three_floor:6.2f} s")
        one, single = best(args.repeat, lambda: write_report(runs[:1], folder / "report-1.html"))
        report_line("view (1 run)", one, one_floor, single, samples)
        three, compared = best(args.repeat, lambda: write_report(runs, folder / "report-3.html"))
        report_line("view (3-run compare)", three, three_floor, compared, 3 * samples)
        try:
            for name, path in (("1 run", single), ("3-run compare", compared)):
                n = browser_numbers(path)
                print(
                    f"chromium ({name}): first paint {n['paint'] / 1000:.2f} s, ready {n['ready'] / 1000:.2f} s "
                    f"(goal first paint <{GOALS['first_paint_s']:g} s: "
                    f"{'met' if n['paint'] / 1000 < GOALS['first_paint_s'] else 'NOT met'}); "
                    f"filter {n['filter']:.0f} ms, search over every sample {n['search']:.0f} ms, "
                    f"{n['rows']} list rows in the page, {n['outside_requests']} requests outside the file"
                )
        except (ImportError, FileNotFoundError) as exc:
            print(f"no browser numbers: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
