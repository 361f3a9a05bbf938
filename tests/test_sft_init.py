"""The chattasks.sft public surface: declared once, sorted, every name importable, cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import chattasks.sft as sft


def test_all_is_sorted_and_every_name_resolves():
    pytest.importorskip("torch")  # the loaders' three names need it
    assert sft.__all__ == sorted(sft.__all__)
    for name in sft.__all__:
        assert getattr(sft, name) is not None, name


def test_the_public_surface_is_pinned():
    assert sft.__all__ == [
        "ChatTemplateRenderer",
        "Measurement",
        "Mixture",
        "MixtureSpec",
        "NANOCHAT_SPECIAL_TOKENS",
        "PackReport",
        "PackedBatch",
        "PackedDataset",
        "PackedIterableDataset",
        "Packer",
        "PackingPlan",
        "RenderError",
        "RenderedConversation",
        "Renderer",
        "SFTDataLoader",
        "SpecError",
        "SpecialTokenRenderer",
        "TaskSpec",
        "ToolFormat",
        "best_fit",
        "check_template",
        "export",
        "load_spec",
        "load_tokenizer",
        "make_renderer",
        "measure",
        "mixture_stats",
        "parse_spec",
        "render",
    ]


def test_importing_the_package_and_the_cli_stays_light():
    code = (
        "import sys, chattasks.sft, chattasks.cli; "
        "print(sorted(m for m in ('numpy', 'torch', 'transformers', 'tokenizers', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
