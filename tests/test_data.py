"""The data layer: local Hub-layout folders and the Hub cache -> memory-mapped, shuffled Arrow rows."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chattasks import DataError, DatasetNotFound, load_rows


@pytest.mark.parametrize(
    ("dataset", "config", "split", "count"),
    [
        ("allenai/ai2_arc", "ARC-Easy", "train", 2251),
        ("allenai/ai2_arc", "ARC-Easy", "validation", 570),
        ("allenai/ai2_arc", "ARC-Easy", "test", 2376),
        ("allenai/ai2_arc", "ARC-Challenge", "test", 1172),
        ("cais/mmlu", "all", "dev", 285),
        ("cais/mmlu", "all", "test", 14042),
        ("openai/gsm8k", "main", "train", 7473),
        ("openai/gsm8k", "socratic", "test", 1319),
        ("openai/openai_humaneval", "openai_humaneval", "test", 164),
    ],
)
def test_row_counts_of_the_local_mirror(hub_dir, dataset, config, split, count):
    assert len(load_rows(dataset, config, split, data_dir=hub_dir)) == count


def test_hub_order_is_kept_when_not_shuffled(hub_dir):
    rows = load_rows("allenai/ai2_arc", "ARC-Easy", "train", data_dir=hub_dir, shuffle_seed=None)
    assert rows[0]["id"] == "Mercury_7220990"
    assert rows[0]["choices"]["label"] == ["A", "B", "C", "D"]
    assert rows[0]["answerKey"] == "B"


def test_shuffle_is_numpy_default_rng_permutation(hub_dir):
    plain = load_rows("cais/mmlu", "all", "dev", data_dir=hub_dir, shuffle_seed=None)
    shuffled = load_rows("cais/mmlu", "all", "dev", data_dir=hub_dir)
    permutation = np.random.default_rng(42).permutation(len(plain))
    assert [shuffled[i] for i in range(20)] == [plain[int(j)] for j in permutation[:20]]
    assert list(shuffled) == [plain[int(j)] for j in permutation]


def test_shuffle_equals_hugging_face_datasets_shuffle_seed_42():
    datasets = pytest.importorskip("datasets")
    for n in (1, 7, 570, 14042):
        reference = datasets.Dataset.from_dict({"i": list(range(n))}).shuffle(seed=42)["i"]
        assert list(np.random.default_rng(42).permutation(n)) == list(reference)


def test_rows_random_access_and_bounds(hub_dir):
    rows = load_rows("openai/gsm8k", "main", "test", data_dir=hub_dir)
    assert rows[-1] == rows[len(rows) - 1]
    assert set(rows[5]) == {"question", "answer"}
    with pytest.raises(IndexError, match="1319"):
        rows[1319]


def test_data_dir_from_environment(hub_dir, monkeypatch):
    monkeypatch.setenv("CHATTASKS_DATA_DIR", str(hub_dir))
    assert len(load_rows("cais/mmlu", "all", "dev")) == 285


def test_missing_split_names_what_was_asked_and_what_is_there(hub_dir):
    with pytest.raises(DatasetNotFound) as raised:
        load_rows("cais/mmlu", "all", "auxiliary_train", data_dir=hub_dir)
    message = str(raised.value)
    assert "cais/mmlu" in message and "'auxiliary_train'" in message and str(hub_dir) in message
    assert "splits there: dev, test, validation" in message


def test_missing_config_and_dataset(hub_dir):
    with pytest.raises(DatasetNotFound, match="configs there: ARC-Challenge, ARC-Easy"):
        load_rows("allenai/ai2_arc", "ARC-Medium", "test", data_dir=hub_dir)
    with pytest.raises(DatasetNotFound, match="does not exist"):
        load_rows("nobody/nothing", "default", "train", data_dir=hub_dir)
    with pytest.raises(ValueError, match="org/name"):
        load_rows("mmlu", "all", "test", data_dir=hub_dir)


def _hub_folder(root: Path, config: str = "default") -> Path:
    folder = root / "org" / "data" / config
    folder.mkdir(parents=True)
    return folder


def test_reads_every_supported_file_format(tmp_path):
    records = [{"a": i, "b": f"row {i}", "c": {"x": [i, i]}} for i in range(5)]
    folder = _hub_folder(tmp_path)
    pq.write_table(pa.Table.from_pylist(records), folder / "parq-00000-of-00001.parquet")
    (folder / "lines.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with gzip.open(folder / "zipped.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(r) for r in records))
    (folder / "array.json").write_text(json.dumps(records))
    for split in ("parq", "lines", "zipped", "array"):
        assert list(load_rows("org/data", "default", split, data_dir=tmp_path, shuffle_seed=None)) == records


def test_sharded_splits_are_concatenated_in_shard_order(tmp_path):
    folder = _hub_folder(tmp_path)
    for shard in range(3):
        rows = [{"shard": shard, "i": i} for i in range(4)]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"train-{shard:05d}-of-00003.parquet")
    rows = load_rows("org/data", "default", "train", data_dir=tmp_path, shuffle_seed=None)
    assert [(r["shard"], r["i"]) for r in rows] == [(s, i) for s in range(3) for i in range(4)]


def test_split_folders_are_read_too(tmp_path):
    folder = _hub_folder(tmp_path) / "test"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{"v": 1}, {"v": 2}]), folder / "0000.parquet")
    assert len(load_rows("org/data", "default", "test", data_dir=tmp_path)) == 2


def test_bad_json_line_names_file_and_line(tmp_path):
    folder = _hub_folder(tmp_path)
    (folder / "train.jsonl").write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(DataError, match=r"train.jsonl:2: invalid JSON"):
        load_rows("org/data", "default", "train", data_dir=tmp_path)


def test_second_load_is_a_zero_copy_memory_map(hub_dir):
    load_rows("cais/mmlu", "all", "test", data_dir=hub_dir)
    before = pa.total_allocated_bytes()
    rows = load_rows("cais/mmlu", "all", "test", data_dir=hub_dir)
    assert pa.total_allocated_bytes() - before < 1_000_000  # the 7 MB of text stays on disk
    assert len(rows) == 14042 and rows[0]["subject"]


def test_cache_follows_changes_to_the_source(tmp_path):
    folder = _hub_folder(tmp_path)
    path = folder / "train.jsonl"
    path.write_text('{"v": 1}\n')
    assert load_rows("org/data", "default", "train", data_dir=tmp_path)[0] == {"v": 1}
    path.write_text('{"v": 22}\n')
    os.utime(path, ns=(1, 1))
    assert load_rows("org/data", "default", "train", data_dir=tmp_path)[0] == {"v": 22}


def test_unwritable_cache_still_loads(tmp_path, monkeypatch, hub_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CHATTASKS_CACHE_DIR", str(blocker))
    assert len(load_rows("cais/mmlu", "all", "dev", data_dir=hub_dir)) == 285


def test_hub_cache_is_used_offline_with_no_network(hub_dir, tmp_path):
    snapshot = tmp_path / "hf" / "datasets--openai--gsm8k" / "snapshots" / "c0ffee" / "main"
    snapshot.mkdir(parents=True)
    (snapshot.parents[2] / "refs").mkdir()
    (snapshot.parents[2] / "refs" / "main").write_text("c0ffee")
    source = hub_dir / "openai" / "gsm8k" / "main" / "test-00000-of-00001.parquet"
    (snapshot / source.name).write_bytes(source.read_bytes())
    code = (
        "from chattasks import load_rows, DatasetNotFound\n"
        "rows = load_rows('openai/gsm8k', 'main', 'test')\n"
        "print(len(rows), rows.where)\n"
        "try:\n    load_rows('openai/gsm8k', 'main', 'train')\n"
        "except DatasetNotFound as exc:\n    print('missing:', 'CHATTASKS_DATA_DIR' in str(exc))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CHATTASKS_DATA_DIR"}
    env.update(HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", CHATTASKS_CACHE_DIR=str(tmp_path / "c"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["1319 hf://datasets/openai/gsm8k", "missing: True"]
