"""The evaluation runner: ``evaluate_model(model, tasks)`` scores a chat model on tasks.

    >>> from chattasks.eval.runner import evaluate_model
    >>> results = evaluate_model(lambda messages: "A", ["ARC-Easy"], limit=20)  # doctest: +SKIP
    >>> results["ARC-Easy"].accuracy, results.centered_mean  # doctest: +SKIP

For each task the runner reads the first ``limit`` rows of the task's view, keeps those of its
shard (row ``i`` belongs to shard ``i % world_size``), skips the ones the journal already holds,
and scores the rest in batches of ``batch_size`` questions (``chattasks.eval.scoring``), appending
every batch to the journal as soon as it is graded. Then the results are computed from the
journal alone, so a run that is killed at any moment and resumed ends with exactly the results
of an uninterrupted run: finished samples are never redone, never counted twice.

Without ``output`` the journal is kept in memory and nothing is written. Sharded runs (torchrun
ranks via a ``distributed`` hook, or separate processes given ``shard=(rank, world_size)``) share
one run directory; each appends its samples, and rank 0 writes results.json (after a barrier when
a ``distributed`` hook is given; without one, rank 0's results.json says ``complete: false``
until ``chattasks regrade RUN_DIR`` is run once every shard has finished).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chattasks.errors import TaskError, TaskNotEvaluable
from chattasks.eval import scoring
from chattasks.eval.backends.base import Backend, GenerationConfig
from chattasks.eval.journal import JournalContents, RunDirectory, RunDirError, key_of
from chattasks.eval.results import EvalProgress, EvalResults, summarize_task
from chattasks.task import Conversation, Task

DEFAULT_TASKS = ("ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval", "SpellingBee")
DEFAULT_BATCH_SIZE = 32
RUN_FORMAT = 1
OPERATIONAL_OPTIONS = frozenset(
    {
        "batch_size",
        "device",
        "concurrency",
        "base_url",
        "base_urls",
        "api_key_env",
        "timeout",
        "max_retries",
        "backoff",
    }
)
"""Backend options that change how fast a run goes, not what it computes: a resumed run may change them."""


class Distributed(Protocol):
    """What the runner needs of a multi-process launcher (``chattasks.eval.distributed``)."""

    rank: int
    world_size: int

    def barrier(self) -> None:
        """Wait until every process gets here."""
        ...


@dataclass
class _Plan:
    """One task of a run: its rows, fingerprint and how many samples each row needs."""

    name: str
    task: Task
    eval_type: str
    conversations: list[Conversation]
    fingerprint: str
    num_samples: int

    @property
    def n(self) -> int:
        return len(self.conversations)


class _MemoryJournal:
    """The journal of a run without a run directory: the same interface, kept in memory."""

    def __init__(self) -> None:
        self._records: dict[str, JournalContents] = {}

    def append(self, task_name: str, records: Iterable[dict[str, Any]], *, fsync: bool = True) -> int:
        contents = self._records.setdefault(task_name, JournalContents())
        count = 0
        for record in records:
            contents.records.setdefault(key_of(record), json.loads(json.dumps(record)))
            count += 1
        return count

    def read(self, task_name: str) -> JournalContents:
        return self._records.get(task_name, JournalContents())


# ----- tasks ------------------------------------------------------------------------------------
def load_task(spec: str | Task, data_dir: str | os.PathLike[str] | None = None) -> tuple[str, Task]:
    """A task and the name its journal and results use: a registry name (built with ``data_dir``
    when the task loads a dataset) or a Task object (named by its ``name`` attribute or class)."""
    if isinstance(spec, Task):
        name = getattr(spec, "name", None)
        return (name if isinstance(name, str) and name else type(spec).__name__), spec
    if not isinstance(spec, str):
        raise TypeError(f"a task must be a registered name or a Task, got {type(spec).__name__}")
    from chattasks.registry import get_entry

    entry = get_entry(spec)
    overrides: dict[str, Any] = {}
    if data_dir is not None and "data_dir" in inspect.signature(entry.factory()).parameters:
        overrides["data_dir"] = data_dir
    return entry.name, entry.build(**overrides)


def fingerprint(conversations: Iterable[Conversation]) -> str:
    """sha256 of the conversations, each as canonical JSON (sorted keys, compact) plus a newline."""
    digest = hashlib.sha256()
    for conversation in conversations:
        line = json.dumps(
            conversation, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def _plan(name: str, task: Task, limit: int | None, generation: GenerationConfig) -> _Plan:
    if not task.is_evaluable:
        raise TaskNotEvaluable(f"task {name!r} is training-only (it has no grader); it cannot be evaluated")
    eval_type = task.eval_type
    if eval_type not in ("categorical", "generative"):
        raise TaskError(f"task {name!r} has eval_type {eval_type!r}; expected 'categorical' or 'generative'")
    n = len(task) if limit is None else min(limit, len(task))
    conversations = [task[i] for i in range(n)]
    num_samples = generation.num_samples if eval_type == "generative" else 1
    return _Plan(name, task, eval_type, conversations, fingerprint(conversations), num_samples)


# ----- backends ---------------------------------------------------------------------------------
def identify_backend(model: Any, backend: str | None, options: Mapping[str, Any]) -> tuple[str, str | None]:
    """(backend name, model label) of what ``resolve_backend`` would build, without building it."""
    from chattasks.eval.backends.callable import function_label

    if isinstance(model, Backend) and not isinstance(model, str):
        if backend is not None or options:
            raise ValueError(
                "backend= and backend options apply only when model is a name or path, not a Backend"
            )
        label = model.describe().get("model")
        return str(getattr(model, "name", type(model).__name__)), None if label is None else str(label)
    if callable(model) and not isinstance(model, str):
        if backend not in (None, "callable"):
            raise ValueError(f"a Python function is evaluated by the callable backend, not {backend!r}")
        return "callable", options.get("label") or function_label(model)
    if model is not None and not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"model must be a Backend, a function messages -> str, a model name/path or None; got {type(model).__name__}"
        )
    return backend or "hf", None if model is None else os.fspath(model)


def resolve_backend(
    model: Any, backend: str | None, options: Mapping[str, Any], batch_size: int | None = None
) -> tuple[Backend, bool]:
    """The backend to evaluate, and whether the runner owns it (and so closes it).

    A backend built here by name gets ``batch_size`` too when its constructor takes one.
    """
    from chattasks.eval.backends import backend_class
    from chattasks.eval.backends.callable import CallableBackend

    name, label = identify_backend(model, backend, options)
    if isinstance(model, Backend) and not isinstance(model, str):
        return model, False
    if name == "callable" and callable(model):
        return CallableBackend(model, **options), True
    cls = backend_class(name)
    options = dict(options)
    if batch_size is not None and "batch_size" not in options and _takes(cls, "batch_size"):
        options["batch_size"] = batch_size
    return cls(model=label, **options), True


def _takes(cls: Any, keyword: str) -> bool:
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _json_safe(options: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(options), default=str, sort_keys=True))


# ----- run directory ----------------------------------------------------------------------------
def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: {old.get(key)!r} (run) vs {new.get(key)!r} (now)"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _check_run(
    run: RunDirectory, settings: dict[str, Any], fingerprints: dict[str, str], resume: bool, world_size: int
) -> bool:
    """Check the run directory before any model loads; whether run.json is still to be written."""
    if run.exists():
        stored = run.read_run()
        if not resume and world_size == 1:
            raise RunDirError(
                f"{run.path} already holds a run; continue it with --resume (resume=True) or choose another --output"
            )
        stored_fingerprints = stored.get("fingerprints", {})
        diffs = _differences(stored.get("settings", {}), settings)
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


def _create_run(run: RunDirectory, payload: dict[str, Any]) -> None:
    """Write a new run's run.json (unless a sibling shard just did)."""
    if not run.exists():
        run.write_run({"format": RUN_FORMAT, "chattasks_version": _version(), "created": _now(), **payload})


def _version() -> str:
    from chattasks import __version__

    return __version__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ----- the runner -------------------------------------------------------------------------------
def _validate(
    limit: int | None, mc_scorer: str, batch_size: int, ks: Sequence[int], shard: tuple[int, int]
) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 (or None for every row), got {limit!r}")
    if mc_scorer not in scoring.MC_SCORERS:
        raise ValueError(f"mc_scorer must be one of {', '.join(scoring.MC_SCORERS)}; got {mc_scorer!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be integers >= 1, got {list(ks)!r}")
    rank, world = shard
    if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard!r}")


def evaluate_model(
    model: Any = None,
    tasks: Sequence[str | Task] = DEFAULT_TASKS,
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
    **backend_options: Any,
) -> EvalResults:
    """Evaluate a chat model on tasks; the results (also written to ``output``/results.json).

    ``model``: a Backend, a function ``messages -> str`` (the callable backend), a model name or
    path for the ``backend`` named (default ``"hf"``), or None for the embedded default model.
    ``tasks``: registry names or Task objects. ``limit``: the first N rows of each task. ``output``:
    the run directory (None: keep the journal in memory); ``resume`` continues it, refusing when
    its settings differ. ``mc_scorer``: ``letter``, ``loglik`` or ``generate`` for multiple choice.
    ``generation``: decoding of generative tasks (``GenerationConfig()``: greedy); ``ks``: the k of
    pass@k when it samples. ``shard=(rank, world_size)`` or a ``distributed`` hook splits the rows
    over processes. ``progress``: a progress bar on stderr (None: only when stderr is a terminal).
    Other keyword arguments go to the backend's constructor.
    """
    started = time.perf_counter()
    generation = generation if generation is not None else GenerationConfig()
    if shard is None:
        shard = (distributed.rank, distributed.world_size) if distributed is not None else (0, 1)
    elif distributed is not None and tuple(shard) != (distributed.rank, distributed.world_size):
        raise ValueError(f"shard={shard!r} disagrees with the distributed hook's rank/world_size")
    _validate(limit, mc_scorer, batch_size, ks, shard)
    rank, world_size = shard
    if isinstance(tasks, str | Task):
        tasks = [tasks]
    if not tasks:
        raise ValueError("tasks is empty: name at least one task")
    if world_size > 1 and output is None:
        raise ValueError("a sharded run needs output= (one run directory every shard shares)")

    loaded = [load_task(spec, data_dir) for spec in tasks]
    names = [name for name, _ in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks are named more than once: {names}")
    plans = [_plan(name, task, limit, generation) for name, task in loaded]

    backend_name, label = identify_backend(model, backend, backend_options)
    settings = {
        "model": label,
        "backend": backend_name,
        "backend_options": _json_safe(
            {k: v for k, v in backend_options.items() if k not in OPERATIONAL_OPTIONS}
        ),
        "tasks": names,
        "limit": limit,
        "mc_scorer": mc_scorer,
        "generation": generation.to_dict(),
    }
    fingerprints = {p.name: p.fingerprint for p in plans}
    store: RunDirectory | _MemoryJournal = RunDirectory(output) if output is not None else _MemoryJournal()
    create = isinstance(store, RunDirectory) and _check_run(store, settings, fingerprints, resume, world_size)

    backend_obj, owned = resolve_backend(model, backend, backend_options, batch_size)
    try:
        if isinstance(store, RunDirectory):
            if create:
                operational = {k: v for k, v in backend_options.items() if k in OPERATIONAL_OPTIONS}
                _create_run(
                    store,
                    {
                        "settings": settings,
                        "fingerprints": fingerprints,
                        "options": _json_safe(operational),  # how fast, not what: not compared on resume
                        "ks": list(ks),
                    },
                )
            if data_dir is not None:
                _remember_data_dir(store, data_dir)
        show = sys.stderr.isatty() if progress is None else progress
        with EvalProgress(show) as bar:
            for plan in plans:
                _run_task(plan, backend_obj, store, bar, mc_scorer, generation, batch_size, rank, world_size)
        description = {"model": label, **_describe(backend_obj), "backend": backend_name}
    finally:
        if owned:
            backend_obj.close()
    if distributed is not None:
        distributed.barrier()
    meta = {
        "model": description,
        "mc_scorer": mc_scorer,
        "generation": generation.to_dict(),
        "seed": generation.seed,
        "limit": limit,
        "ks": list(ks),
        "chattasks_version": _version(),
        "shard": {"rank": rank, "world_size": world_size},
        "run_dir": str(store.path) if isinstance(store, RunDirectory) else None,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "finished": _now(),
    }
    results = collect_results(plans, store, meta, ks)
    if isinstance(store, RunDirectory) and rank == 0:
        results.write(store.results_file)
    return results


def _describe(backend: Backend) -> dict[str, Any]:
    try:
        return _json_safe(backend.describe())
    except Exception as exc:  # a description must never cost the results
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def _remember_data_dir(run: RunDirectory, data_dir: str | os.PathLike[str]) -> None:
    payload = run.read_run()
    resolved = str(Path(data_dir).expanduser().resolve())
    if payload.get("data_dir") != resolved:
        payload["data_dir"] = resolved
        run.write_run(payload)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_task(
    plan: _Plan,
    backend: Backend,
    store: RunDirectory | _MemoryJournal,
    bar: EvalProgress,
    mc_scorer: str,
    generation: GenerationConfig,
    batch_size: int,
    rank: int,
    world_size: int,
) -> None:
    """Score the rows of ``plan`` in this shard that the journal does not hold yet."""
    done = store.read(plan.name).records
    mine = range(rank, plan.n, world_size)
    wanted = range(plan.num_samples)
    pending = [i for i in mine if any((i, s) not in done for s in wanted)]
    finished = [i for i in mine if all((i, s) in done for s in wanted)]
    bar.add_task(
        plan.name,
        total=len(mine),
        done=len(finished),
        score_sum=sum(_mean_score([done[i, s] for s in wanted]) for i in finished),
    )
    if pending and plan.eval_type == "categorical" and mc_scorer == "loglik":
        scoring.loglik_request(plan.task, plan.conversations[pending[0]])  # fail early on unusable rows
    for batch in _chunks(pending, batch_size):
        items = [(i, plan.conversations[i]) for i in batch]
        begun = time.perf_counter()
        if plan.eval_type == "generative":
            fields = scoring.score_generative(backend, plan.task, items, generation)
            indices = [i for i in batch for _ in wanted]
        elif mc_scorer == "loglik":
            fields = scoring.score_loglik(backend, plan.task, items)
            indices = list(batch)
        elif mc_scorer == "generate":
            fields = scoring.score_mc_generate(backend, plan.task, items, seed=generation.seed)
            indices = list(batch)
        else:
            fields = scoring.score_letters(backend, plan.task, items)
            indices = list(batch)
        seconds = (time.perf_counter() - begun) / max(len(fields), 1)
        finished_at = round(time.time(), 3)
        records = []
        for index, field_set in zip(indices, fields):
            sample = int(field_set.pop("sample", 0))
            if (index, sample) in done:  # a partly journaled question: keep what was written first
                continue
            conversation = plan.conversations[index]
            records.append(
                {
                    "task": plan.name,
                    "index": index,
                    "sample": sample,
                    **field_set,
                    "reference": scoring.reference_of(plan.task, conversation),
                    "prompt": scoring.prompt_of(conversation),
                    "time": round(seconds, 6),
                    "rank": rank,
                    "finished": finished_at,
                }
            )
        store.append(plan.name, records)
        by_index: dict[int, list[dict[str, Any]]] = {}
        for record in records:
            by_index.setdefault(record["index"], []).append(record)
        bar.advance(plan.name, len(batch), sum(_mean_score(group) for group in by_index.values()))


def _mean_score(records: Sequence[Mapping[str, Any]]) -> float:
    return sum(float(record["score"]) for record in records) / len(records) if records else 0.0


def collect_results(
    plans: Sequence[_Plan],
    store: RunDirectory | _MemoryJournal,
    meta: dict[str, Any],
    ks: Sequence[int],
) -> EvalResults:
    """Compute the results of every task from the journal (the only source of truth)."""
    tasks = {}
    samples = {}
    sample_time = 0.0
    for plan in plans:
        contents = store.read(plan.name)
        kept = [
            r for key, r in sorted(contents.records.items()) if key[0] < plan.n and key[1] < plan.num_samples
        ]
        sample_time += sum(float(r.get("time") or 0.0) for r in kept)
        tasks[plan.name] = summarize_task(
            plan.name,
            plan.eval_type,
            kept,
            expected=plan.n,
            num_samples=plan.num_samples,
            ks=ks,
            fingerprint=plan.fingerprint,
            duplicates=contents.duplicates,
            corrupt=contents.corrupt,
        )
        samples[plan.name] = kept
    return EvalResults(tasks, {**meta, "sample_time_s": round(sample_time, 3)}, samples)


# ----- re-grading -------------------------------------------------------------------------------
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
    run = RunDirectory(run_dir)
    stored = run.read_run()
    settings = stored.get("settings", {})
    data_dir = data_dir if data_dir is not None else stored.get("data_dir")
    generation = GenerationConfig(**settings.get("generation", {}))
    plans = []
    for name in settings.get("tasks", []):
        task = (tasks or {}).get(name)
        spec: str | Task = task if task is not None else name
        plan = _plan(name, load_task(spec, data_dir)[1], settings.get("limit"), generation)
        expected = stored.get("fingerprints", {}).get(name)
        if expected is not None and expected != plan.fingerprint:
            raise RunDirError(
                f"cannot regrade {run.path}: the data of {name} changed since the run "
                f"(fingerprint {expected[:12]} vs {plan.fingerprint[:12]})"
            )
        plans.append(plan)
    for plan in plans:
        contents = run.read(plan.name)
        ordered = list(contents.records.values())
        inside = [r for r in ordered if int(r["index"]) < plan.n]
        graded = scoring.regrade_records(
            plan.task, plan.eval_type, [(plan.conversations[int(r["index"])], r) for r in inside]
        )
        updated = {key_of(r): r for r in graded}
        run.rewrite(plan.name, [updated.get(key_of(r), r) for r in ordered])
    previous: dict[str, Any] = {}
    if run.results_file.is_file():
        try:
            previous = EvalResults.from_dict(json.loads(run.results_file.read_text(encoding="utf-8"))).meta
        except (ValueError, KeyError, TypeError):
            previous = {}
    meta = {
        "model": {"backend": settings.get("backend"), "model": settings.get("model")},
        "mc_scorer": settings.get("mc_scorer"),
        "generation": generation.to_dict(),
        "seed": generation.seed,
        "limit": settings.get("limit"),
        "ks": list(stored.get("ks") or [1]),
        "chattasks_version": _version(),
        "run_dir": str(run.path),
        **{k: v for k, v in previous.items() if k != "sample_time_s"},
        "regraded": _now(),
        "regrade_time_s": round(time.perf_counter() - started, 3),
    }
    results = collect_results(plans, run, meta, meta.get("ks") or [1])
    results.write(run.results_file)
    return results
