"""Settling the ``hf`` backend's model: device, dtype, loading, stop tokens and context length.

``load_model`` loads a folder, a Hub id or (``model=None``) the embedded default model, from its
converted copy when there is a good one (``hf_model``).

``resolve_device("auto")`` is ``cuda`` (``cuda:$LOCAL_RANK`` under torchrun) when available, else
``cpu``. ``resolve_dtype("auto", device)`` is bfloat16 on CUDA (float16 where bf16 is unsupported)
and on CPUs with AMX tiles, else float32: on an AVX-512 CPU without AMX, bf16 matrix products ran
at 0.65x the speed of float32 (133 vs 207 GFLOPS on 2 cores), and float32 keeps batched and
unbatched scores equal to ~1e-5 (bf16: ~0.1 nats).

Everything here takes torch and transformers as arguments (``hf_model.import_hf``), so importing
this module imports neither.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chattasks.errors import BackendError
from chattasks.eval.backends.hf_model import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_PACKAGE,
    converted_dir,
    default_model_path,
    env_flag,
    is_complete_copy,
    quiet_loading,
    save_converted,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(torch: Any, device: str) -> str:
    """``device`` checked, or for ``auto`` the GPU of this rank when there is one, else ``cpu``."""
    if device != "auto":
        try:
            torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N, ...; got {device!r}") from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', torch.cuda.current_device()))}"
    return "cpu"


def resolve_dtype(torch: Any, dtype: str, device: str) -> str:
    """``dtype``, or for ``auto`` the fastest exact-enough one on ``device`` (see the module doc)."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu":
        try:
            amx = bool(torch.cpu._is_amx_tile_supported())
        except (AttributeError, RuntimeError):
            amx = False
        return "bfloat16" if amx else "float32"
    return "float32"


def load(torch: Any, transformers: Any, source: str, options: dict[str, Any], device: str, dtype: str) -> Any:
    """(tokenizer, model) read from ``source``; BackendError in one line when they cannot be."""
    placement = {"device_map": device} if device != "cpu" else {}
    try:
        with quiet_loading(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **options)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=getattr(torch, dtype), **placement, **options
            )
    except (OSError, ValueError, KeyError) as exc:
        gguf = options.get("gguf_file")
        where = source + (f" (gguf_file={gguf})" if gguf else "")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(
            f"could not load model {where}: {first}; pass a local model folder or a Hub id "
            "(and --gguf-file for a GGUF file)"
        ) from exc
    return tokenizer, model


def pad_id(tokenizer: Any) -> int:
    """The id padding is written with: the pad token, else EOS, else 0 (masked out either way)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """EOS ids of the tokenizer and the model's generation config, and the end-of-turn token."""
    ids: list[int] = []
    shipped = getattr(model, "generation_config", None)
    eos = getattr(shipped, "eos_token_id", None)
    for value in [tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])]:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    end_of_turn = end_of_turn_id(tokenizer)
    if end_of_turn is not None and end_of_turn not in ids:
        ids.append(end_of_turn)
    return ids


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The special token the chat template writes right after an assistant message, if any."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    marker = "chattasks-end-of-turn-probe"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
        )
    except Exception:  # a template that refuses this shape just gives no end-of-turn token
        return None
    after = text.split(marker, 1)[-1] if marker in text else ""
    ids = tokenizer.encode(after, add_special_tokens=False) if after else []
    special = set(tokenizer.all_special_ids)
    return next((int(i) for i in ids if i in special), None)


def model_max_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes: its config's position limit, else the tokenizer's, else 2048."""
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 2048


@dataclass(frozen=True)
class LoadedModel:
    """A tokenizer and model, and where they came from."""

    tokenizer: Any
    model: Any
    source: str
    """The folder or Hub id read."""
    model_id: str
    """The model's name in results (the default model's names its package and version)."""
    gguf_file: str | None
    loaded_from: str | None = None
    """The converted copy of the default model, when it was read instead of its GGUF file."""


def load_model(
    torch: Any,
    transformers: Any,
    model: str | os.PathLike[str] | None,
    gguf_file: str | None,
    device: str,
    dtype: str,
) -> LoadedModel:
    """Load ``model`` (None: the embedded default model); BackendError naming what failed."""
    if model is None:
        return _load_default(torch, transformers, device, dtype)
    source = os.fspath(model)
    tokenizer, loaded = _load(torch, transformers, source, gguf_file, device, dtype)
    return LoadedModel(tokenizer, loaded, source, source, gguf_file)


def _load_default(torch: Any, transformers: Any, device: str, dtype: str) -> LoadedModel:
    """The embedded SmolLM2-135M-Instruct: from its converted copy when there is a good one."""
    path = default_model_path()
    source, gguf_file = str(path.parent), path.name
    version = importlib.metadata.version(DEFAULT_MODEL_PACKAGE)
    model_id = f"SmolLM2-135M-Instruct ({DEFAULT_MODEL_PACKAGE} {version})"
    copy_dir = converted_dir(Path(source) / DEFAULT_MODEL_FILE, dtype)
    if copy_dir is not None and is_complete_copy(copy_dir):
        try:
            tokenizer, model = load(
                torch, transformers, str(copy_dir), {"local_files_only": True}, device, dtype
            )
            return LoadedModel(tokenizer, model, source, model_id, gguf_file, str(copy_dir))
        except BackendError:  # a damaged copy: the GGUF file is still there
            pass
    tokenizer, model = _load(torch, transformers, source, gguf_file, device, dtype)
    if copy_dir is not None:
        save_converted(model, tokenizer, copy_dir, transformers)
    return LoadedModel(tokenizer, model, source, model_id, gguf_file)


def _load(
    torch: Any, transformers: Any, source: str, gguf_file: str | None, device: str, dtype: str
) -> tuple[Any, Any]:
    """Load from a folder or the Hub; offline (a local path or ``HF_HUB_OFFLINE``) from files only."""
    local = Path(source).expanduser().exists()
    offline = local or env_flag(os.environ.get("HF_HUB_OFFLINE"))
    options: dict[str, Any] = {"local_files_only": offline}
    if gguf_file is not None:
        options["gguf_file"] = gguf_file
    try:
        return load(torch, transformers, source, options, device, dtype)
    except BackendError as exc:
        hint = "" if local or not offline else "; offline, only models already in the Hugging Face cache load"
        raise BackendError(f"{exc}{hint}") from exc.__cause__
