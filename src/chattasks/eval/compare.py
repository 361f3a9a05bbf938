"""Comparing runs question by question: did the candidate really get better than the baseline?

    >>> from chattasks.eval.compare import compare_runs
    >>> report = compare_runs(["runs/base", "runs/new"])  # doctest: +SKIP
    >>> task = report.comparisons[0].tasks["ARC-Easy"]  # doctest: +SKIP
    >>> task.difference, task.ci95, task.p_value, task.gained, task.lost  # doctest: +SKIP

The first run is the baseline A; every other run B is compared with it. Questions pair by
(task, index) (``pairing``); a task whose data fingerprints differ is refused
(``IncomparableRuns``) unless ``allow_different_data``, which pairs the indexes both runs
completed and says how many. Per task, over the paired questions (differences are B − A):

- 0/1 scores, one sample per question (``Kind.BINARY``): McNemar's exact test (two-sided
  binomial test on the questions that flipped, ``gained`` = A wrong and B right, ``lost`` = A
  right and B wrong) and Newcombe's paired score interval (method 10) of the difference.
- other scores, e.g. a question's mean over several samples (``Kind.CONTINUOUS``): the paired
  t-test and the t interval of the mean difference (``gained``/``lost``: questions better/worse).
- p-values are also given Holm-adjusted across the tasks of each comparison (``p_holm``).

Overall, the ChatCORE-style centred mean of each run over the paired questions
(``(accuracy − chance) / (1 − chance)`` per task, averaged over the tasks with paired questions;
chance is the mean over the paired questions of 1/letters, from the baseline's records) and the
difference, with a percentile bootstrap interval and a two-sided bootstrap p-value: questions are
resampled with replacement within each task (``resamples`` times, numpy ``default_rng`` seeded by
``(seed, crc32 of the task name)``, so a task's draws do not depend on the other tasks), each
task's centred difference recomputed, and the tasks averaged. All statistics: ``stats``.

The result types are ``comparison``'s; ``gate.check_gates`` gates a pipeline on a report.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zlib
from collections.abc import Sequence

from chattasks.errors import IncomparableRuns
from chattasks.eval import stats
from chattasks.eval.comparison import (
    ALPHA,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    OVERALL,
    CompareReport,
    Comparison,
    Kind,
    Method,
    OverallComparison,
    Side,
    TaskComparison,
)
from chattasks.eval.journal import RunDirectory
from chattasks.eval.pairing import METRICS, LoadedRun, PairedTask, RunInfo, load_run, pair

RunSpec = str | os.PathLike[str] | RunDirectory | LoadedRun


def compare_runs(
    runs: Sequence[RunSpec],
    *,
    tasks: Sequence[str] | None = None,
    allow_different_data: bool = False,
    metric: str = "acc",
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> CompareReport:
    """Compare every run after the first with the first, question by question (module docstring).

    A run is a directory, or a ``LoadedRun`` already read (``pairing.load_run``, which can take
    journal records read before, as the report does). ``tasks`` limits the comparison to those
    tasks (default: every task of the baseline). ``metric``: ``acc`` or ``acc_norm`` (loglik
    runs). ``IncomparableRuns`` when a task's data differ and not ``allow_different_data``;
    RunDirError when a directory holds no run.
    """
    if len(runs) < 2:
        raise ValueError(f"compare needs at least two runs (a baseline and a candidate), got {len(runs)}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    loaded = [run if isinstance(run, LoadedRun) else load_run(run) for run in runs]
    if tasks is not None:
        unknown = [name for name in tasks if not any(name in run.info.tasks for run in loaded)]
        if unknown:
            raise ValueError(f"no run evaluated task(s) {', '.join(unknown)}")
    comparisons = [
        _compare(loaded[0], other, tasks, allow_different_data, metric, seed, resamples)
        for other in loaded[1:]
    ]
    return CompareReport([run.info for run in loaded], comparisons, metric, seed, resamples)


def _compare(
    a: LoadedRun,
    b: LoadedRun,
    wanted: Sequence[str] | None,
    allow_different_data: bool,
    metric: str,
    seed: int,
    resamples: int,
) -> Comparison:
    names_a = [t for t in a.info.tasks if wanted is None or t in wanted]
    names_b = [t for t in b.info.tasks if wanted is None or t in wanted]
    shared = [t for t in names_a if t in names_b]
    paired: dict[str, PairedTask] = {}
    skipped: dict[str, str] = {}
    for name in shared:
        task = pair(a.task_scores(name, metric), b.task_scores(name, metric))
        fa, fb = task.baseline.fingerprint, task.candidate.fingerprint
        if fa is not None and fb is not None and fa != fb and not allow_different_data:
            raise IncomparableRuns(
                f"task {name}: {a.info.path} and {b.info.path} evaluated different data (fingerprints "
                f"{fa[:12]} vs {fb[:12]}, e.g. another --limit); --allow-different-data compares "
                "the question indexes both completed"
            )
        lacking = [
            run.info.path for run, side in ((a, task.baseline), (b, task.candidate)) if side.missing_metric
        ]
        if lacking and not task.indexes:
            skipped[name] = f"no {metric} in {', '.join(lacking)}"
            continue
        paired[name] = task
    results = [_task_comparison(task, _same_data(task), metric) for task in paired.values()]
    adjusted = stats.holm([result.p_value for result in results])
    tasks = {
        result.task: dataclasses.replace(result, p_holm=p)
        for result, p in zip(results, adjusted, strict=True)
    }
    overall = _overall(list(paired.values()), seed, resamples)
    only_a = [t for t in names_a if t not in names_b]
    only_b = [t for t in names_b if t not in names_a]
    return Comparison(a.info, b.info, tasks, overall, only_a, only_b, skipped)


def _same_data(task: PairedTask) -> bool | None:
    fa, fb = task.baseline.fingerprint, task.candidate.fingerprint
    return None if fa is None or fb is None else fa == fb


def _side(task: PairedTask, which: int, scores: list[float]) -> Side:
    side = (task.baseline, task.candidate)[which]
    return Side(
        accuracy=sum(scores) / len(scores) if scores else None,
        questions=len(side.scores),
        unpaired=task.unpaired()[which],
        samples_only=task.samples_only()[which],
        incomplete=side.incomplete,
        samples_per_question=side.samples_per_question,
        fingerprint=side.fingerprint,
    )


def _task_comparison(task: PairedTask, same_data: bool | None, metric: str) -> TaskComparison:
    a, b = task.a, task.b
    n = len(a)
    gained_indexes = [i for i, x, y in zip(task.indexes, a, b, strict=True) if y > x]
    lost_indexes = [i for i, x, y in zip(task.indexes, a, b, strict=True) if y < x]
    gained, lost = len(gained_indexes), len(lost_indexes)
    kind = Kind.EMPTY if n == 0 else Kind.BINARY if task.binary else Kind.CONTINUOUS
    difference = ci95 = p = interval = test = None
    if kind is Kind.BINARY:
        both = sum(1 for x, y in zip(a, b, strict=True) if x == y == 1.0)
        difference = (gained - lost) / n
        ci95 = stats.newcombe_paired_interval(both, lost, gained, n - both - lost - gained)
        p, interval, test = stats.mcnemar_exact(lost, gained), Method.NEWCOMBE_PAIRED, Method.MCNEMAR_EXACT
    elif kind is Kind.CONTINUOUS:
        differences = [y - x for x, y in zip(a, b, strict=True)]
        difference = math.fsum(differences) / n
        result = stats.paired_t(differences)
        if result is not None:
            ci95, p, interval, test = result.ci95, result.p_value, Method.PAIRED_T, Method.PAIRED_T
    chance = task.chance
    notes = _notes(task, same_data, metric)
    return TaskComparison(
        task=task.task,
        kind=kind,
        n=n,
        baseline=_side(task, 0, a),
        candidate=_side(task, 1, b),
        difference=difference,
        ci95=ci95,
        interval=interval,
        test=test,
        p_value=p,
        p_holm=None,
        gained=gained,
        lost=lost,
        ties=n - gained - lost,
        chance=chance,
        centered_difference=None if difference is None else difference / (1 - chance),
        same_data=same_data,
        notes=notes,
        gained_indexes=gained_indexes,
        lost_indexes=lost_indexes,
    )


def _notes(task: PairedTask, same_data: bool | None, metric: str) -> list[str]:
    notes = []
    if same_data is False:
        notes.append(f"data differ: compared the {len(task.indexes)} question indexes both runs completed")
    elif same_data is None:
        notes.append("data not verified: a run has no fingerprint for this task")
    only_a, only_b = task.unpaired()
    if only_a or only_b:
        notes.append(f"questions completed by one run only: {only_a} baseline, {only_b} candidate")
    samples_a, samples_b = task.samples_only()
    if samples_a or samples_b:
        notes.append(f"samples journaled by one run only: {samples_a} baseline, {samples_b} candidate")
    if task.baseline.incomplete or task.candidate.incomplete:
        notes.append(
            f"incomplete questions (some samples missing): {task.baseline.incomplete} baseline, "
            f"{task.candidate.incomplete} candidate"
        )
    if task.baseline.samples_per_question != task.candidate.samples_per_question:
        notes.append(
            f"samples per question differ: {task.baseline.samples_per_question} baseline, "
            f"{task.candidate.samples_per_question} candidate (each question's mean is compared)"
        )
    missing = task.baseline.missing_metric + task.candidate.missing_metric
    if missing:
        notes.append(f"{missing} complete questions without {metric} left out")
    if len(task.indexes) == 1 and not task.binary:
        notes.append("one paired question: no test")
    return notes


def _overall(tasks: list[PairedTask], seed: int, resamples: int) -> OverallComparison:
    import numpy as np

    used = [task for task in tasks if task.indexes]
    if not used:
        return OverallComparison([], None, None, None, None, None)
    centred_a, centred_b, draws = [], [], np.zeros(resamples)
    for task in used:
        scale = 1 - task.chance
        a, b = np.asarray(task.a), np.asarray(task.b)
        centred_a.append((a.mean() - task.chance) / scale)
        centred_b.append((b.mean() - task.chance) / scale)
        rng = np.random.default_rng([seed, zlib.crc32(task.task.encode())])
        draws += stats.bootstrap_mean((b - a) / scale, resamples, rng)
    draws /= len(used)
    mean_a, mean_b = float(np.mean(centred_a)), float(np.mean(centred_b))
    low, high = np.quantile(draws, [(1 - stats.CONFIDENCE) / 2, (1 + stats.CONFIDENCE) / 2])
    return OverallComparison(
        tasks=[task.task for task in used],
        baseline=mean_a,
        candidate=mean_b,
        difference=mean_b - mean_a,
        ci95=(float(low), float(high)),
        p_value=stats.bootstrap_p(draws),
    )


__all__ = [
    "ALPHA",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "OVERALL",
    "CompareReport",
    "Comparison",
    "Kind",
    "Method",
    "OverallComparison",
    "RunInfo",
    "Side",
    "TaskComparison",
    "compare_runs",
]
