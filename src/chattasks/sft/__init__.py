"""Supervised fine-tuning data: mixture specs, rendering with exact loss masks, packing, loading, export.

Importing this package is cheap; each name below is imported from its module on first use
(``PackedDataset``, ``PackedIterableDataset`` and ``SFTDataLoader`` need torch).
"""

# ruff: noqa: F401  -- names are re-exported lazily; imported eagerly only for type checkers

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ChatTemplateRenderer": "chattasks.sft.template",
    "Measurement": "chattasks.sft.measure",
    "Mixture": "chattasks.sft.spec",
    "MixtureSpec": "chattasks.sft.spec",
    "NANOCHAT_SPECIAL_TOKENS": "chattasks.sft.special",
    "PackReport": "chattasks.sft.pack",
    "PackedBatch": "chattasks.sft.pack",
    "PackedDataset": "chattasks.sft.loader",
    "PackedIterableDataset": "chattasks.sft.loader",
    "Packer": "chattasks.sft.pack",
    "PackingPlan": "chattasks.sft.plan",
    "RenderError": "chattasks.errors",
    "RenderedConversation": "chattasks.sft.renderer",
    "Renderer": "chattasks.sft.renderer",
    "SFTDataLoader": "chattasks.sft.loader",
    "SpecError": "chattasks.errors",
    "SpecialTokenRenderer": "chattasks.sft.special",
    "TaskSpec": "chattasks.sft.spec",
    "ToolFormat": "chattasks.sft.renderer",
    "best_fit": "chattasks.sft.pack",
    "check_template": "chattasks.sft.check_template",
    "export": "chattasks.sft.export",
    "load_spec": "chattasks.sft.spec",
    "load_tokenizer": "chattasks.sft.tokenizer",
    "make_renderer": "chattasks.sft.render",
    "measure": "chattasks.sft.measure",
    "mixture_stats": "chattasks.sft.stats",
    "parse_spec": "chattasks.sft.spec",
    "render": "chattasks.sft.render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chattasks.sft' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from chattasks.errors import RenderError, SpecError
    from chattasks.sft.check_template import check_template
    from chattasks.sft.export import export
    from chattasks.sft.loader import PackedDataset, PackedIterableDataset, SFTDataLoader
    from chattasks.sft.measure import Measurement, measure
    from chattasks.sft.pack import PackedBatch, Packer, PackReport, best_fit
    from chattasks.sft.plan import PackingPlan
    from chattasks.sft.render import make_renderer, render
    from chattasks.sft.renderer import RenderedConversation, Renderer, ToolFormat
    from chattasks.sft.spec import Mixture, MixtureSpec, TaskSpec, load_spec, parse_spec
    from chattasks.sft.special import NANOCHAT_SPECIAL_TOKENS, SpecialTokenRenderer
    from chattasks.sft.stats import mixture_stats
    from chattasks.sft.template import ChatTemplateRenderer
    from chattasks.sft.tokenizer import load_tokenizer
