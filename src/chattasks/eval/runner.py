"""The evaluation runner: ``evaluate_model(model, tasks)`` scores a chat model on tasks.

    >>> from chattasks.eval.runner import evaluate_model
    >>> results = evaluate_model(lambda messages: "A", ["ARC-Easy"], limit=20)  # doctest: +SKIP
    >>> results["ARC-Easy"].accuracy, results.centered_mean  # doctest: +SKIP

The flow is plan -> scorer -> journal -> results. Each task is planned (``plan.plan_task``: the
first ``limit`` rows of its view, their fingerprint, its scorer); the rows of this shard (row
``i`` belongs to shard ``i % world_size``) that the journal does not hold yet are scored in
batches of ``batch_size`` questions, every batch appended to the journal as soon as it is graded.
Then the results are computed from the journal alone, so a run that is killed at any moment and
resumed ends with exactly the results of an uninterrupted run: finished samples are never redone,
never counted twice.

Without ``output`` the journal is kept in memory and nothing is written. Sharded runs (torchrun
ranks via a ``distributed`` hook, or separate processes given ``shard=(rank, world_size)``) share
one run directory; each appends its samples, and rank 0 writes results.json (after a barrier when
a ``distributed`` hook is given; without one, rank 0's results.json says ``complete: false``
until ``chattasks regrade RUN_DIR`` is run once every shard has finished).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from chattasks.eval.backends.base import Backend, GenerationConfig
from chattasks.eval.backends.resolve import build_backend, choose_backend
from chattasks.eval.journal import MemoryJournal, RunDirectory
from chattasks.eval.plan import TaskPlan, plan_task
from chattasks.eval.progress import EvalProgress
from chattasks.eval.record import SampleRecord
from chattasks.eval.results import EvalResults, summarize_task
from chattasks.eval.scorers import MC_SCORERS, Batch
from chattasks.eval.settings import RunSettings, check_run, create_run, json_safe, now, remember_path
from chattasks.registry import build_task, default_eval_tasks
from chattasks.task import Task

DEFAULT_BATCH_SIZE = 32
Store = RunDirectory | MemoryJournal


class Distributed(Protocol):
    """What the runner needs of a multi-process launcher (``chattasks.eval.distributed``)."""

    rank: int
    world_size: int

    def barrier(self) -> None:
        """Wait until every process gets here."""
        ...


def _validate(
    limit: int | None, mc_scorer: str, batch_size: int, ks: Sequence[int], shard: tuple[int, int]
) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 (or None for every row), got {limit!r}")
    if mc_scorer not in MC_SCORERS:
        raise ValueError(f"mc_scorer must be one of {', '.join(MC_SCORERS)}; got {mc_scorer!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be integers >= 1, got {list(ks)!r}")
    rank, world = shard
    if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard!r}")


def _shard(shard: tuple[int, int] | None, distributed: Distributed | None) -> tuple[int, int]:
    if shard is None:
        return (distributed.rank, distributed.world_size) if distributed is not None else (0, 1)
    if distributed is not None and tuple(shard) != (distributed.rank, distributed.world_size):
        raise ValueError(f"shard={shard!r} disagrees with the distributed hook's rank/world_size")
    return shard


def plan_tasks(
    tasks: Sequence[str | Task],
    limit: int | None,
    mc_scorer: str,
    generation: GenerationConfig,
    data_dir: str | os.PathLike[str] | None,
    exclude_contaminated: str | os.PathLike[str] | None = None,
) -> list[TaskPlan]:
    """The plan of every task of a run; ValueError when a name repeats. With a contamination report
    (``chattasks contamination --out``), each task's contaminated rows are left out."""
    built = [build_task(spec, data_dir=data_dir) for spec in tasks]
    names = [name for name, _ in built]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks are named more than once: {names}")
    plans = []
    for name, task in built:
        excluded = (
            contaminated_rows(exclude_contaminated, name, task) if exclude_contaminated else frozenset()
        )
        plans.append(plan_task(name, task, limit, mc_scorer, generation, excluded))
    return plans


def contaminated_rows(report_path: str | os.PathLike[str], name: str, task: Task) -> frozenset[int]:
    """The rows of ``task`` a contamination report found in a mixture; ReportError when the report
    was made on other data (its item count or fingerprint differ) or lacks the task."""
    from chattasks.contamination import ContaminationReport
    from chattasks.errors import ReportError
    from chattasks.eval.plan import fingerprint

    entry = ContaminationReport.from_json(report_path).task(name)
    if entry.items != len(task) or (entry.fingerprint and entry.fingerprint != fingerprint(task)):
        raise ReportError(
            f"{report_path}: task {name!r} was checked on other data ({entry.items} items, fingerprint "
            f"{entry.fingerprint[:12]}) than this run's ({len(task)} items); make the report again"
        )
    return frozenset(entry.indices)


def _default_generation(output: str | os.PathLike[str] | None, resume: bool) -> GenerationConfig:
    """``GenerationConfig()``, or the decoding of the run being resumed (as ``--resume`` does)."""
    if resume and output is not None:
        run = RunDirectory(output)
        if run.exists():
            return RunSettings.from_json(run.read_run().get("settings", {})).generation
    return GenerationConfig()


def evaluate_model(
    model: Any = None,
    tasks: Sequence[str | Task] | None = None,
    *,
    backend: str | None = None,
    limit: int | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    mc_scorer: str = "letter",
    generation: GenerationConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ks: Sequence[int] = (1,),
    shard: tuple[int, int] | None = None,
    distributed: Distributed | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    exclude_contaminated: str | os.PathLike[str] | None = None,
    **backend_options: Any,
) -> EvalResults:
    """Evaluate a chat model on tasks; the results (also written to ``output``/results.json).

    ``model``: a Backend, a function ``messages -> str`` (the callable backend), a model name or
    path for the ``backend`` named (default ``"hf"``), or None for the embedded default model.
    ``tasks``: registry names or Task objects (None: ``registry.default_eval_tasks()``).
    ``limit``: the first N rows of each task. ``output``: the run directory (None: keep the
    journal in memory); ``resume`` continues it, refusing when its settings differ.
    ``mc_scorer``: ``letter``, ``loglik`` or ``generate`` for multiple choice. ``generation``:
    decoding of generative tasks (None: ``GenerationConfig()``, greedy, or when resuming, the
    run's own decoding); ``ks``: the k of pass@k when it samples. ``shard=(rank, world_size)``
    or a ``distributed`` hook splits the rows over processes. ``progress``: a progress bar on stderr (None: only when stderr is a terminal).
    ``exclude_contaminated``: a report of ``chattasks contamination``; each task's contaminated
    rows are left out (results.json says how many, run.json which).
    Other keyword arguments are the backend's options (its ``OPTIONS``).
    """
    started = time.perf_counter()
    generation = generation if generation is not None else _default_generation(output, resume)
    rank, world_size = shard = _shard(shard, distributed)
    _validate(limit, mc_scorer, batch_size, ks, shard)
    tasks = default_eval_tasks() if tasks is None else [tasks] if isinstance(tasks, str | Task) else tasks
    if not tasks:
        raise ValueError("tasks is empty: name at least one task")
    if world_size > 1 and output is None:
        raise ValueError("a sharded run needs output= (one run directory every shard shares)")

    plans = plan_tasks(tasks, limit, mc_scorer, generation, data_dir, exclude_contaminated)
    choice = choose_backend(model, backend, backend_options)
    excluded = {p.name: sorted(p.excluded) for p in plans if p.excluded}
    settings = RunSettings(
        choice.label,
        choice.name,
        [p.name for p in plans],
        limit,
        mc_scorer,
        generation,
        choice.options,
        excluded,
    )
    fingerprints = {p.name: p.fingerprint for p in plans}
    store: Store = RunDirectory(output) if output is not None else MemoryJournal()
    create = isinstance(store, RunDirectory) and check_run(store, settings, fingerprints, resume, world_size)

    backend_obj, owned = build_backend(model, choice, batch_size)
    try:
        if isinstance(store, RunDirectory):
            if create:
                create_run(store, settings, fingerprints, choice.operational, ks)
            for key, path in (("data_dir", data_dir), ("exclude_contaminated", exclude_contaminated)):
                if path is not None:
                    remember_path(store, key, path)
        show = sys.stderr.isatty() if progress is None else progress
        throughput = {}
        with EvalProgress(show, status=getattr(backend_obj, "status", None)) as bar:
            for plan in plans:
                before = _generation_counters(backend_obj)
                run_task(plan, backend_obj, store, bar, batch_size, rank, world_size)
                throughput[plan.name] = _throughput(before, _generation_counters(backend_obj))
        description = {"model": choice.label, **_describe(backend_obj), "backend": choice.name}
    finally:
        if owned:
            backend_obj.close()
    if distributed is not None:
        distributed.barrier()
    meta = {
        "model": description,
        **settings.results_meta(ks, store.path if isinstance(store, RunDirectory) else None),
        "shard": {"rank": rank, "world_size": world_size},
        "throughput": {name: rate for name, rate in throughput.items() if rate is not None},
        "wall_time_s": round(time.perf_counter() - started, 3),
        "finished": now(),
    }
    results = collect_results(plans, store, meta, ks)
    if isinstance(store, RunDirectory) and rank == 0:
        results.write(store.results_file)
    return results


def _describe(backend: Backend) -> dict[str, Any]:
    try:
        return json_safe(backend.describe())
    except Exception as exc:  # a description must never cost the results
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def _generation_counters(backend: Backend) -> tuple[int, float] | None:
    """(tokens generated, seconds spent generating) so far, for a backend that counts them (hf)."""
    tokens, seconds = getattr(backend, "tokens_generated", None), getattr(backend, "generation_seconds", None)
    return (int(tokens), float(seconds)) if tokens is not None and seconds is not None else None


def _throughput(
    before: tuple[int, float] | None, after: tuple[int, float] | None
) -> dict[str, float | None] | None:
    """Tokens generated for one task in this process and their rate (results.json's ``throughput``)."""
    if before is None or after is None or after[0] == before[0]:
        return None
    tokens, seconds = after[0] - before[0], after[1] - before[1]
    rate = round(tokens / seconds, 2) if seconds > 0 else None
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_second": rate}


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_task(
    plan: TaskPlan,
    backend: Backend,
    store: Store,
    bar: EvalProgress,
    batch_size: int,
    rank: int,
    world_size: int,
) -> None:
    """Score the rows of ``plan`` in this shard that the journal does not hold yet."""
    done = store.read(plan.name).records
    mine = [i for i in plan.rows if i % world_size == rank]
    wanted = range(plan.num_samples)
    pending = [i for i in mine if any((i, s) not in done for s in wanted)]
    finished = [i for i in mine if all((i, s) in done for s in wanted)]
    bar.add_task(
        plan.name,
        total=len(mine),
        done=len(finished),
        score_sum=sum(_mean_score([done[i, s] for s in wanted]) for i in finished),
    )
    if pending:
        plan.scorer.check(plan.task, plan.question(pending[0]))  # fail early on unusable rows
    for indices in _chunks(pending, batch_size):
        begun = time.perf_counter()
        graded = plan.scorer.score(backend, plan.task, Batch(plan.name, [plan.question(i) for i in indices]))
        seconds = round((time.perf_counter() - begun) / max(len(graded), 1), 6)
        stamp = round(time.time(), 3)
        # a partly journaled question keeps what was written first
        records = [
            record.replace(time=seconds, rank=rank, finished=stamp)
            for record in graded
            if record.key not in done
        ]
        store.append(plan.name, records)
        by_index: dict[int, list[SampleRecord]] = {}
        for record in records:
            by_index.setdefault(record.index, []).append(record)
        bar.advance(plan.name, len(indices), sum(_mean_score(group) for group in by_index.values()))


def _mean_score(records: Sequence[SampleRecord]) -> float:
    return sum(record.score for record in records) / len(records) if records else 0.0


def collect_results(
    plans: Sequence[TaskPlan], store: Store, meta: dict[str, Any], ks: Sequence[int]
) -> EvalResults:
    """Compute the results of every task from the journal (the only source of truth)."""
    tasks = {}
    samples = {}
    sample_time = 0.0
    for plan in plans:
        contents = store.read(plan.name)
        kept = [
            r
            for key, r in sorted(contents.records.items())
            if key[0] < plan.n and key[0] not in plan.excluded and key[1] < plan.num_samples
        ]
        sample_time += sum(r.time for r in kept)
        tasks[plan.name] = summarize_task(
            plan.name,
            plan.eval_type,
            kept,
            expected=len(plan.rows),
            num_samples=plan.num_samples,
            ks=ks,
            fingerprint=plan.fingerprint,
            duplicates=contents.duplicates,
            corrupt=contents.corrupt,
            rows=set(plan.rows) if plan.excluded else None,
        )
        samples[plan.name] = kept
    return EvalResults(tasks, {**meta, "sample_time_s": round(sample_time, 3)}, samples)
