"""Export a mixture as ``{"messages": [...]}`` shards for Hugging Face datasets and TRL.

Files are ``<split>-00000-of-0000N.<ext>`` in the output folder, ``shard_size`` conversations each,
in the mixture's order. Every row has ``messages`` and ``source`` (the spec label it came from).

- ``jsonl``: messages exactly as the tasks give them; an assistant message with tool parts keeps
  its content as the list of ``{"type", "text"}`` parts (lossless; the chattasks schema). Text is
  UTF-8 as is, except U+2028, U+2029 and U+0085, written as JSON escapes so that every reader
  (``str.splitlines`` included) sees one conversation per line.
- ``parquet``: one fixed schema, as Arrow needs: every ``content`` is a string -- tool parts are
  written with ``ToolFormat`` (default ``<<code=output>>``, GSM8K's notation) -- and each message
  also has ``parts``: the original parts, or null for plain messages. This is TRL's conversational
  format (``messages`` of ``role``/``content``); load it with
  ``datasets.load_dataset("parquet", data_files="DIR/*.parquet", split="train")``.

Note that a trainer masking by chat template (TRL's ``assistant_only_loss``) trains on the tool
output text too; chattasks' own loaders never do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chattasks.sft.renderer import ToolFormat
from chattasks.sft.spec import Mixture

FORMATS = ("jsonl", "parquet")


def parquet_schema() -> Any:
    """The Arrow schema of parquet exports."""
    import pyarrow as pa

    part = pa.struct([("type", pa.string()), ("text", pa.string())])
    message = pa.struct([("role", pa.string()), ("content", pa.string()), ("parts", pa.list_(part))])
    return pa.schema([("messages", pa.list_(message)), ("source", pa.string())])


def parquet_messages(messages: list[dict[str, Any]], tool_format: ToolFormat) -> list[dict[str, Any]]:
    """Messages with string contents and a ``parts`` field (see the module docstring)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content, "parts": None})
        else:
            parts = [{"type": part["type"], "text": part["text"]} for part in content]
            out.append({"role": message["role"], "content": tool_format.flatten(content), "parts": parts})
    return out


_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _json_line(record: dict[str, Any]) -> str:
    """One JSON line, UTF-8 text kept, with the characters ``str.splitlines`` breaks on escaped."""
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


def _records(mixture: Mixture, start: int, stop: int) -> Iterator[tuple[list[dict[str, Any]], str]]:
    for index in range(start, stop):
        yield mixture.task[index]["messages"], mixture.label_of(index)


def export(
    mixture: Mixture,
    out_dir: str | os.PathLike[str],
    *,
    format: str = "jsonl",
    shard_size: int = 100_000,
    split: str = "train",
    tool_format: ToolFormat | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``mixture`` to ``out_dir`` in shards (see the module docstring); return the files written."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    tool_format = tool_format or ToolFormat()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = len(mixture)
    shards = max(1, -(-total // shard_size))
    written = []
    for shard in range(shards):
        start, stop = shard * shard_size, min((shard + 1) * shard_size, total)
        path = out / f"{split}-{shard:05d}-of-{shards:05d}.{format}"
        if format == "jsonl":
            with path.open("w", encoding="utf-8") as handle:
                for messages, label in _records(mixture, start, stop):
                    handle.write(_json_line({"messages": messages, "source": label}))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = [
                {"messages": parquet_messages(messages, tool_format), "source": label}
                for messages, label in _records(mixture, start, stop)
            ]
            pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), path)
        written.append(path)
        if progress is not None:
            progress(stop - start)
    return written
