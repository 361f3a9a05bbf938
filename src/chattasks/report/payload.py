"""The data a report's page script reads: every sample of every run, as compact JSON.

The object embedded in the page (``embed_json`` makes it safe inside a ``<script>`` element)::

    {"runs":    [{"label": "smol", "tasks": ["ARC-Easy", ...]}, ...],
     "kinds":   ["no_answer", "not_a_letter", "timeout", "sandbox_error"],
     "methods": ["logits", "generate", ...],
     "prompts": [[{"role": "user", "content": "..."}], ...],
     "samples": [{"ARC-Easy": {"i": [...], "k": [...], "p": [...], "r": [...], "x": [...],
                               "g": [...], "s": [...], "f": [...], "m": [...], "t": [...], "d": [...]}}, ...],
     "pairs":   [{"task": "ARC-Easy", "a": 0, "b": 1, "gained": [...], "lost": [...]}, ...]}

``samples[run][task]`` holds one column per field, one entry per journal record in (index, sample)
order: ``i`` index, ``k`` sample number, ``p`` position of its prompt in ``prompts`` (prompts are
stored once however many runs and samples share them), ``r`` response, ``x`` extracted answer,
``g`` reference, ``s`` score, ``f`` position of its failure in ``kinds`` (-1: none), ``m``
position of its method in ``methods``, ``t`` model seconds, ``d`` details (null when empty).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chattasks.eval.record import Failure, SampleRecord
from chattasks.report.pairs import PairedTask
from chattasks.report.runs import ReportRun

KINDS = [kind.value for kind in Failure]


def report_payload(runs: Sequence[ReportRun], pairs: Sequence[PairedTask]) -> dict[str, Any]:
    """The page's data for ``runs`` and their ``pairs`` (see the module docstring)."""
    prompts: dict[Any, int] = {}
    prompt_list: list[Any] = []
    methods: dict[str, int] = {}
    samples = []
    for run in runs:
        tasks = {}
        for task in run.tasks:
            tasks[task] = _columns(run.samples.get(task, []), prompts, prompt_list, methods)
        samples.append(tasks)
    return {
        "runs": [{"label": run.label, "tasks": run.tasks} for run in runs],
        "kinds": KINDS,
        "methods": list(methods),
        "prompts": prompt_list,
        "samples": samples,
        "pairs": [
            {"task": p.task, "a": p.base, "b": p.other, "gained": list(p.gained), "lost": list(p.lost)}
            for p in pairs
        ],
    }


def _columns(
    records: Sequence[SampleRecord], prompts: dict[Any, int], prompt_list: list[Any], methods: dict[str, int]
) -> dict[str, list[Any]]:
    positions = []
    for record in records:
        try:  # a tuple of the messages' items: fast, and equal exactly for equal prompts
            key: Any = tuple(tuple(message.items()) for message in record.prompt)
            position = prompts.get(key)
        except TypeError:  # contents given as parts (lists) cannot be hashed: the prompt's JSON then
            key = json.dumps(record.prompt, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            position = prompts.get(key)
        if position is None:
            position = prompts[key] = len(prompt_list)
            prompt_list.append(record.prompt)
        positions.append(position)
    kinds = {kind: number for number, kind in enumerate(Failure)}
    return {
        "i": [r.index for r in records],
        "k": [r.sample for r in records],
        "p": positions,
        "r": [r.response for r in records],
        "x": [r.extracted for r in records],
        "g": [r.reference for r in records],
        "s": [r.score for r in records],
        "f": [-1 if r.failure is None else kinds[r.failure] for r in records],
        "m": [methods.setdefault(r.method, len(methods)) for r in records],
        "t": [round(r.time, 3) for r in records],
        "d": [r.details or None for r in records],
    }


def embed_json(payload: Any) -> str:
    """``payload`` as compact JSON that is safe as the text of a ``<script type="application/json">``
    element: every ``<`` is written ``\\u003c``, so no ``</script>`` or ``<!--`` can end or bend it."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")
