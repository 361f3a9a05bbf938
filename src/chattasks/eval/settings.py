"""What a run was asked to do (``RunSettings``), kept in run.json and checked when a run resumes.

run.json holds ``format``, ``chattasks_version``, ``created``, ``settings`` (what decides the
results: model, backend and its result-changing options, tasks, limit, multiple-choice scorer,
decoding), ``fingerprints`` (each task's rows), ``options`` (operational backend options, not
compared on resume), ``ks`` and, when given, ``data_dir``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chattasks.errors import RunDirError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.journal import RunDirectory

RUN_FORMAT = 1


@dataclass(frozen=True)
class RunSettings:
    """The settings that decide a run's results (run.json's ``settings``)."""

    model: str | None
    backend: str
    tasks: list[str]
    limit: int | None
    mc_scorer: str
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    backend_options: dict[str, Any] = field(default_factory=dict)
    excluded: dict[str, list[int]] = field(default_factory=dict)
    """Rows left out per task (``--exclude-contaminated``); absent from run.json when none are."""

    def to_json(self) -> dict[str, Any]:
        """run.json's ``settings`` object."""
        payload = {
            "model": self.model,
            "backend": self.backend,
            "backend_options": json_safe(self.backend_options),
            "tasks": list(self.tasks),
            "limit": self.limit,
            "mc_scorer": self.mc_scorer,
            "generation": self.generation.to_dict(),
        }
        if self.excluded:
            payload["excluded"] = {name: sorted(rows) for name, rows in self.excluded.items()}
        return payload

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> RunSettings:
        """Rebuild from run.json's ``settings`` object (a run made before tools existed called none)."""
        generation = {"tools": "none", **(payload.get("generation") or {})}
        return cls(
            model=payload.get("model"),
            backend=str(payload.get("backend") or "hf"),
            tasks=list(payload.get("tasks") or []),
            limit=payload.get("limit"),
            mc_scorer=str(payload.get("mc_scorer") or "letter"),
            generation=GenerationConfig(**generation),
            backend_options=dict(payload.get("backend_options") or {}),
            excluded={name: list(rows) for name, rows in (payload.get("excluded") or {}).items()},
        )

    def results_meta(self, ks: Sequence[int], run_dir: Path | None) -> dict[str, Any]:
        """What results.json says of the run's settings, besides the model description."""
        return {
            "mc_scorer": self.mc_scorer,
            "generation": self.generation.to_dict(),
            "seed": self.generation.seed,
            "limit": self.limit,
            "ks": list(ks),
            "chattasks_version": version(),
            "run_dir": None if run_dir is None else str(run_dir),
            **(
                {"excluded": {name: len(rows) for name, rows in self.excluded.items()}}
                if self.excluded
                else {}
            ),
        }


def json_safe(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as JSON would give them back (sorted keys, anything unknown as its string)."""
    return json.loads(json.dumps(dict(options), default=str, sort_keys=True))


def version() -> str:
    """The installed chattasks version."""
    from chattasks import __version__

    return __version__


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: {old.get(key)!r} (run) vs {new.get(key)!r} (now)"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def check_run(
    run: RunDirectory, settings: RunSettings, fingerprints: dict[str, str], resume: bool, world_size: int
) -> bool:
    """Check the run directory before any model loads; whether run.json is still to be written."""
    if run.exists():
        stored = run.read_run()
        if not resume and world_size == 1:
            raise RunDirError(
                f"{run.path} already holds a run; continue it with --resume (resume=True) or choose another --output"
            )
        stored_fingerprints = stored.get("fingerprints", {})
        # read through RunSettings, so that settings added since the run was made compare as their old default
        diffs = _differences(RunSettings.from_json(stored.get("settings", {})).to_json(), settings.to_json())
        diffs += [
            f"data of {name} changed (fingerprint {stored_fingerprints[name][:12]} vs {fp[:12]})"
            for name, fp in fingerprints.items()
            if stored_fingerprints.get(name) not in (None, fp)
        ]
        if diffs:
            raise RunDirError(f"cannot resume {run.path}: settings differ: {'; '.join(diffs)}")
        return False
    if resume:
        if not run.path.is_dir():
            raise RunDirError(f"cannot resume: run directory {run.path} does not exist")
        raise RunDirError(f"cannot resume: {run.path} holds no run (run.json is missing)")
    if run.has_samples():
        raise RunDirError(f"{run.path} holds journal files but no run.json; choose another --output")
    return True


def create_run(
    run: RunDirectory,
    settings: RunSettings,
    fingerprints: dict[str, str],
    operational: Mapping[str, Any],
    ks: Sequence[int],
) -> None:
    """Write a new run's run.json (unless a sibling shard just did)."""
    if not run.exists():
        run.write_run(
            {
                "format": RUN_FORMAT,
                "chattasks_version": version(),
                "created": now(),
                "settings": settings.to_json(),
                "fingerprints": fingerprints,
                "options": json_safe(operational),  # how fast, not what: not compared on resume
                "ks": list(ks),
            }
        )


def remember_path(run: RunDirectory, key: str, path: str | os.PathLike[str]) -> None:
    """Record a file or folder the run read (``data_dir``, ``exclude_contaminated``) in run.json,
    resolved, so that resume and regrade read the same."""
    payload = run.read_run()
    resolved = str(Path(path).expanduser().resolve())
    if payload.get(key) != resolved:
        payload[key] = resolved
        run.write_run(payload)


def open_run(
    run_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None
) -> tuple[RunDirectory, dict[str, Any], RunSettings, str | os.PathLike[str] | None]:
    """A finished run: its directory, run.json, settings, and the dataset folder to rebuild its tasks
    with (``data_dir``, else the one the run recorded)."""
    run = RunDirectory(run_dir)
    stored = run.read_run()
    settings = RunSettings.from_json(stored.get("settings", {}))
    return run, stored, settings, data_dir if data_dir is not None else stored.get("data_dir")
