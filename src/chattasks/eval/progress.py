"""The progress display of an evaluation run: one bar per task on stderr (rich)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _status_column(status: Callable[[], object]) -> Any:
    """A rich column showing ``str(status())``, read afresh at every refresh (so it moves during a batch)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class StatusColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            try:
                return Text(str(status()), style="dim")
            except Exception:  # a display must never stop a run
                return Text("")

    return StatusColumn()


class EvalProgress:
    """A progress display on stderr: one bar per task with ETA and running accuracy (rich)."""

    def __init__(self, enabled: bool, status: Callable[[], object] | None = None) -> None:
        self.enabled = enabled
        self.status = status
        """What the backend says of itself while it works (``str()`` of it shown on each bar: e.g. the
        openai backend's concurrency limit in force and its retries)."""
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._sums: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> EvalProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = [
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("acc {task.fields[accuracy]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
            ]
            if self.status is not None:
                columns.append(_status_column(self.status))
            self._progress = Progress(*columns, console=Console(stderr=True))
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add_task(self, name: str, total: int, done: int, score_sum: float) -> None:
        """Start the bar of a task with ``done`` of ``total`` questions already journaled."""
        self._sums[name] = (score_sum, done)
        if self._progress is not None:
            self._bars[name] = self._progress.add_task(
                name, total=total, completed=done, accuracy=self._accuracy(name)
            )

    def advance(self, name: str, questions: int, score_sum: float) -> None:
        """Count ``questions`` more finished questions whose mean scores add up to ``score_sum``."""
        total, count = self._sums.get(name, (0.0, 0))
        self._sums[name] = (total + score_sum, count + questions)
        if self._progress is not None and name in self._bars:
            self._progress.update(self._bars[name], advance=questions, accuracy=self._accuracy(name))

    def _accuracy(self, name: str) -> str:
        total, count = self._sums[name]
        return f"{total / count:.3f}" if count else "–"
