"""nanochat's ``tasks.common``: the base class, mixtures and ``render_mc``, from chattasks."""

from chattasks.render import render_mc
from chattasks.task import Task, TaskMixture, TaskSequence

__all__ = ["Task", "TaskMixture", "TaskSequence", "render_mc"]
