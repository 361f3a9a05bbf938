"""Opening chattasks reports in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Playwright's own browser download is never used: ``launch`` starts the system Chromium
(``$CHATTASKS_CHROMIUM``, else ``chromium`` on the PATH). Used by tests/test_report_render.py,
bench/bench_view.py and, run as a script, to make the README's screenshot:

    python tests/report_browser.py docs/report.png
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    """The system Chromium to drive, or None when there is none."""
    found = (
        os.environ.get("CHATTASKS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    return found if found and Path(found).exists() else None


@contextlib.contextmanager
def launch() -> Iterator[Any]:
    """A headless system Chromium (a Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("no system Chromium found: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class OpenReport:
    """A report open in a page, with every network request and page error seen since it opened."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def outside_requests(self) -> list[str]:
        """Requests for anything but the report file itself (none is allowed)."""
        return [url for url in self.requests if url != self.url]


@contextlib.contextmanager
def open_report(browser: Any, path: Path, viewport: dict[str, int] | None = None) -> Iterator[OpenReport]:
    """Open ``path`` in a fresh browser context and wait until its script has run."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    try:
        page = context.new_page()
        report = OpenReport(page, Path(path).resolve().as_uri())
        context.on("request", lambda request: report.requests.append(request.url))
        page.on("pageerror", lambda error: report.errors.append(str(error)))
        page.goto(report.url)
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        yield report
    finally:
        context.close()


def distinct_colours(browser: Any, png: bytes) -> int:
    """How many distinct colours a PNG has, counted by drawing it on a canvas in the browser."""
    page = browser.new_page()
    try:
        return int(
            page.evaluate(
                """async (data) => {
                    const image = new Image();
                    image.src = "data:image/png;base64," + data;
                    await image.decode();
                    const canvas = document.createElement("canvas");
                    canvas.width = image.width; canvas.height = image.height;
                    const context = canvas.getContext("2d");
                    context.drawImage(image, 0, 0);
                    const pixels = context.getImageData(0, 0, image.width, image.height).data;
                    const seen = new Set();
                    for (let i = 0; i < pixels.length; i += 4) seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
                    return seen.size;
                }""",
                base64.b64encode(png).decode(),
            )
        )
    finally:
        page.close()


def screenshot(report: OpenReport, out: Path | None = None) -> bytes:
    """A PNG of what the page shows now (the viewport), written to ``out`` too when given."""
    png: bytes = report.page.screenshot(type="png")
    if out is not None:
        Path(out).write_bytes(png)
    return png


def demo_runs(folder: Path) -> list[Path]:
    """Two runs of the in-memory tasks by two students: what the README's screenshot shows."""
    import memory_tasks
    from report_runs import make_run

    memory_tasks.register()
    return [make_run(folder / "student-a", 1), make_run(folder / "student-b", 2)]


def readme_screenshot(out: Path) -> int:
    """Write the README's screenshot of a two-run report to ``out``; its size in bytes."""
    from chattasks.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        report_path = write_report(demo_runs(Path(tmp)))
        with launch() as browser, open_report(browser, report_path, {"width": 1100, "height": 760}) as report:
            report.page.locator("#sample-list .row").nth(3).click()
            report.page.evaluate("document.getElementById('results').scrollIntoView()")
            png = screenshot(report, out)
    return len(png)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report.png")
    print(f"{target}: {readme_screenshot(target):,} bytes")
