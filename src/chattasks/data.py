"""One loader for every dataset task: Hub or local folder -> memory-mapped Arrow rows.

``load_rows(dataset_id, config, split)`` finds the split's files, reads them with pyarrow,
keeps them as an Arrow IPC file in a cache folder (so later loads are a zero-copy memory map)
and returns ``Rows``: O(1) random access to plain Python dicts, in the Hub's row order
shuffled by ``numpy.random.default_rng(seed).permutation(n)`` -- the order
``datasets.Dataset.shuffle(seed=seed)`` gives, which is what nanochat's tasks read.

Where the files come from, first match wins:

1. ``data_dir`` (argument) or ``$CHATTASKS_DATA_DIR``: a folder in the Hub's layout,
   ``<org>/<dataset>/<config>/<split>[-*].{parquet,jsonl,jsonl.gz,json}``.
2. The Hugging Face Hub through ``huggingface_hub`` (cache in ``$HF_HOME``; honours
   ``HF_HUB_OFFLINE``). Files already cached are used without any network call.

The Arrow cache lives in ``$CHATTASKS_CACHE_DIR`` (default ``~/.cache/chattasks``); it is an
optimisation only, and an unwritable cache folder just means reading the source each time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from chattasks.errors import DataError, DatasetNotFound

EXTENSIONS = (".parquet", ".jsonl", ".jsonl.gz", ".json")
_CACHE_FORMAT = "1"  # bump when the conversion below changes


class Rows(Sequence[dict[str, Any]]):
    """The rows of one dataset split: Arrow columns, read one row at a time as a dict."""

    def __init__(
        self, table: pa.Table, order: np.ndarray | None = None, *, source: str = "", where: str = ""
    ) -> None:
        self.table = table
        self.order = order
        self.source = source  # what was asked for: "org/name [config/split]"
        self.where = where  # where it was found: a folder or an hf:// address
        self._columns = [(name, table.column(name)) for name in table.column_names]

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"row {index} out of range for {self.source or 'dataset'} of {n} rows")
        row = int(self.order[index]) if self.order is not None else int(index) % n
        return {name: column[row].as_py() for name, column in self._columns}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.order is None:
            for batch in self.table.to_batches(max_chunksize=1024):
                yield from batch.to_pylist()
        else:  # row by row: measured faster than take() + to_pylist() of the shuffled table
            for i in range(len(self)):
                yield self[i]

    @property
    def column_names(self) -> list[str]:
        """The dataset's field names."""
        return list(self.table.column_names)


def default_data_dir() -> Path | None:
    """The local Hub-layout folder named by ``$CHATTASKS_DATA_DIR``, if set."""
    value = os.environ.get("CHATTASKS_DATA_DIR")
    return Path(value).expanduser() if value else None


def load_rows(
    dataset_id: str,
    config: str = "default",
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    shuffle_seed: int | None = 42,
) -> Rows:
    """Load one split of a Hub dataset as ``Rows``, shuffled with ``shuffle_seed`` (None: Hub order)."""
    if dataset_id.count("/") != 1:
        raise ValueError(f"dataset id must look like 'org/name', got {dataset_id!r}")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if root is not None:
        files = local_split_files(root / dataset_id, config, split)
        where = str(root / dataset_id / config)
    else:
        files, where = hub_split_files(dataset_id, config, split)
    table = read_table_cached(files)
    label = f"{dataset_id} [{config}/{split}]"
    order = None
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(table.num_rows)
    return Rows(table, order, source=label, where=where)


def _split_of(path: Path) -> str:
    name = path.name
    for ext in EXTENSIONS[::-1]:  # longest first: .jsonl.gz before .json
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return name.split("-", 1)[0]


def find_split_files(config_dir: Path, split: str) -> list[Path]:
    """Files of ``split`` in one config folder: ``split.ext``, ``split-*.ext`` or ``split/*.ext``."""
    if not config_dir.is_dir():
        return []
    found = [
        p
        for p in config_dir.iterdir()
        if p.is_file() and p.name.endswith(EXTENSIONS) and _split_of(p) == split
    ]
    if not found and (config_dir / split).is_dir():
        found = [p for p in (config_dir / split).iterdir() if p.is_file() and p.name.endswith(EXTENSIONS)]
    return sorted(found)


def _available(config_dir: Path) -> str:
    parent = config_dir.parent
    if not parent.is_dir():
        return f"{parent} does not exist"
    if not config_dir.is_dir():
        configs = sorted(p.name for p in parent.iterdir() if p.is_dir())
        return f"configs there: {', '.join(configs) or 'none'}"
    splits = {_split_of(p) for p in config_dir.iterdir() if p.name.endswith(EXTENSIONS)}
    splits |= {p.name for p in config_dir.iterdir() if p.is_dir()}
    return f"splits there: {', '.join(sorted(splits)) or 'none'}"


def local_split_files(dataset_dir: Path, config: str, split: str) -> list[Path]:
    """The files of (config, split) in a local Hub-layout dataset folder; DatasetNotFound if none."""
    config_dir = dataset_dir / config
    files = find_split_files(config_dir, split)
    if not files:
        raise DatasetNotFound(
            f"dataset {dataset_dir.parent.name}/{dataset_dir.name} config {config!r} split {split!r}: "
            f"no {'/'.join(EXTENSIONS)} files in {config_dir} ({_available(config_dir)})"
        )
    return files


def _hub_patterns(config: str, split: str) -> list[str]:
    folders = [config] + (["data"] if config == "default" else [])
    return [p for f in folders for p in (f"{f}/{split}-*", f"{f}/{split}.*", f"{f}/{split}/*")]


def hub_split_files(dataset_id: str, config: str, split: str) -> tuple[list[Path], str]:
    """Download (or find in the local cache) the files of one split on the Hugging Face Hub."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = _hub_patterns(config, split)
    tried = []
    for revision in (None, "refs/convert/parquet"):
        for local_only in (True, False):
            try:
                folder = Path(
                    snapshot_download(
                        dataset_id,
                        repo_type="dataset",
                        revision=revision,
                        allow_patterns=patterns,
                        local_files_only=local_only,
                    )
                )
            except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
                tried.append(f"{revision or 'main'}{' (cache)' if local_only else ''}: {type(exc).__name__}")
                continue
            files = [
                f
                for folder_name in {p.split("/")[0] for p in patterns}
                for f in find_split_files(folder / folder_name, split)
            ]
            if files:
                return sorted(files), f"hf://datasets/{dataset_id}"
            tried.append(f"{revision or 'main'}{' (cache)' if local_only else ''}: no files match {patterns}")
    raise DatasetNotFound(
        f"dataset {dataset_id} config {config!r} split {split!r} not found on the Hugging Face Hub "
        f"({'; '.join(tried)}); for offline use set CHATTASKS_DATA_DIR to a local Hub-layout folder"
    )


def cache_dir() -> Path:
    """The folder chattasks caches converted data in: ``$CHATTASKS_CACHE_DIR`` or ``~/.cache/chattasks``."""
    return Path(os.environ.get("CHATTASKS_CACHE_DIR", Path.home() / ".cache" / "chattasks")).expanduser()


def _cache_key(files: Sequence[Path]) -> str:
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def read_table_cached(files: Sequence[Path]) -> pa.Table:
    """Read ``files`` as one Arrow table, memory-mapped from the Arrow cache when it holds them."""
    cached = cache_dir() / "arrow" / f"{_cache_key(files)}.arrow"
    if cached.exists():
        try:
            return pa.ipc.open_file(pa.memory_map(str(cached))).read_all()
        except (pa.ArrowInvalid, OSError):
            pass  # a damaged cache file: rebuild it below
    table = pa.concat_tables([read_file(path) for path in files], promote_options="default").combine_chunks()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".tmp", delete=False) as tmp:
            with pa.ipc.new_file(tmp, table.schema) as writer:
                writer.write_table(table)
        os.replace(tmp.name, cached)
        return pa.ipc.open_file(pa.memory_map(str(cached))).read_all()
    except OSError:
        return table


def read_file(path: Path) -> pa.Table:
    """Read one parquet / JSON-lines / gzipped JSON-lines / JSON-array file into an Arrow table."""
    name = path.name
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path, memory_map=True)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = []
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowException, TypeError) as exc:
        raise DataError(f"{path}: rows do not share one schema: {exc}") from exc
