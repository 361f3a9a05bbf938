"""The runs a report shows: each run directory's settings, results and journal, read once.

A run is read from its directory (``chattasks.eval.journal`` documents the layout): run.json for
the settings, results.json for the scores (the numbers the report prints are exactly these), and
``samples/<task>.jsonl`` for the samples, in (index, sample) order, those of the questions the
results cover (index below the task's ``expected``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chattasks.errors import RunDirError
from chattasks.eval.journal import RunDirectory
from chattasks.eval.record import SampleRecord
from chattasks.eval.results import EvalResults


@dataclass(frozen=True)
class ReportRun:
    """One run as the report shows it."""

    path: Path
    label: str
    """The short name the report gives the run (its directory's name, made unique among the runs)."""
    settings: dict[str, Any]
    """run.json as written by ``chattasks eval``."""
    results: EvalResults
    """results.json (``meta`` holds the model description, decoding, version, times)."""
    samples: dict[str, list[SampleRecord]] = field(repr=False)
    """Each task's journal records, in (index, sample) order."""

    @property
    def tasks(self) -> list[str]:
        """The run's tasks, in results.json's order."""
        return list(self.results.tasks)

    def fingerprint(self, task: str) -> str | None:
        """The fingerprint of a task's rows (results.json's, else run.json's)."""
        result = self.results.tasks.get(task)
        if result is not None and result.fingerprint:
            return result.fingerprint
        value = self.settings.get("fingerprints", {}).get(task)
        return str(value) if value else None


def load_run(path: str | os.PathLike[str], label: str | None = None) -> ReportRun:
    """Read a run directory; RunDirError when it holds no run or no results.json yet."""
    run = RunDirectory(path)
    settings = run.read_run()
    if not run.results_file.is_file():
        raise RunDirError(
            f"{run.path} has no results.json yet (the run has not finished); "
            f"finish it with chattasks eval --resume --output {run.path}, or score what is journaled "
            f"with chattasks regrade {run.path}"
        )
    try:
        payload = json.loads(run.results_file.read_text(encoding="utf-8"))
        results = EvalResults.from_dict(payload)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{run.results_file}: cannot read the results: {exc}") from None
    samples = {}
    for name, result in results.tasks.items():
        records = run.read(name).records
        samples[name] = [records[key] for key in sorted(records) if key[0] < result.expected]
    return ReportRun(run.path, label or run.path.name or str(run.path), settings, results, samples)


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[ReportRun]:
    """Read several run directories, labelled by their names (made unique); ValueError for none."""
    if not paths:
        raise ValueError("name at least one run directory")
    return [load_run(path, label) for path, label in zip(paths, unique_labels(paths))]


def unique_labels(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Short distinct names for run directories: the last path component, or more of the path
    (then the position) when two would share one."""
    parts = [Path(path).expanduser().absolute().parts for path in paths]
    labels = []
    for number, these in enumerate(parts):
        for depth in range(1, len(these) + 1):
            label = "/".join(these[-depth:])
            if all(label != "/".join(other[-depth:]) for j, other in enumerate(parts) if j != number):
                break
        else:
            label = f"{'/'.join(these[-1:])} ({number + 1})"
        labels.append(label)
    return labels
