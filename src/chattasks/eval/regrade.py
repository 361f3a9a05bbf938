"""Re-grading: every journaled response of a run graded again by the current graders, no model call."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from chattasks.errors import RunDirError
from chattasks.eval.journal import RunDirectory
from chattasks.eval.plan import plan_task
from chattasks.eval.results import EvalResults
from chattasks.eval.runner import collect_results
from chattasks.eval.settings import now, open_run
from chattasks.registry import build_task
from chattasks.task import Task


def regrade(
    run_dir: str | os.PathLike[str],
    *,
    tasks: Mapping[str, Task] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> EvalResults:
    """Re-grade every journaled response of a run with the current graders (no model call), rewrite
    the journals and results.json, and return the results. Do not run it while the run writes.

    ``tasks`` supplies Task objects by name for tasks that are not in the registry.
    """
    started = time.perf_counter()
    run, stored, settings, data_dir = open_run(run_dir, data_dir)
    plans = []
    for name in settings.tasks:
        _, task = build_task((tasks or {}).get(name) or name, data_dir=data_dir)
        excluded = frozenset(settings.excluded.get(name, ()))
        plan = plan_task(name, task, settings.limit, settings.mc_scorer, settings.generation, excluded)
        expected = stored.get("fingerprints", {}).get(name)
        if expected is not None and expected != plan.fingerprint:
            raise RunDirError(
                f"cannot regrade {run.path}: the data of {name} changed since the run "
                f"(fingerprint {expected[:12]} vs {plan.fingerprint[:12]})"
            )
        plans.append(plan)
    for plan in plans:
        ordered = list(run.read(plan.name).records.values())
        inside = [(plan.question(r.index), r) for r in ordered if r.index < plan.n]
        updated = {record.key: record for record in plan.scorer.regrade(plan.task, inside)}
        run.rewrite(plan.name, [updated.get(r.key, r) for r in ordered])
    ks = list(stored.get("ks") or [1])
    meta = {
        "model": {"backend": settings.backend, "model": settings.model},
        **settings.results_meta(ks, run.path),
        **{k: v for k, v in _previous_meta(run).items() if k != "sample_time_s"},
        "regraded": now(),
        "regrade_time_s": round(time.perf_counter() - started, 3),
    }
    results = collect_results(plans, run, meta, meta.get("ks") or [1])
    results.write(run.results_file)
    return results


def _previous_meta(run: RunDirectory) -> dict[str, Any]:
    """The meta of the run's last results.json (its model description, shard, wall time), if readable."""
    if not run.results_file.is_file():
        return {}
    try:
        return EvalResults.from_dict(json.loads(run.results_file.read_text(encoding="utf-8"))).meta
    except (ValueError, KeyError, TypeError):
        return {}
