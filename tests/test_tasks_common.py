"""tasks.common, nanochat's loader API: load_hub_dataset and HubDataset on the real local mirror."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chattasks.errors import DatasetNotFound
from chattasks.tasks.arc import ARC
from tasks.common import HubDataset, Task, load_hub_dataset


def gsm8k_test_rows(hub_dir):
    """GSM8K main/test read straight from its parquet file, in file order."""
    return pq.read_table(hub_dir / "openai/gsm8k/main/test-00000-of-00001.parquet").to_pylist()


def test_load_hub_dataset_gives_the_hub_rows_in_file_order(hub_dir):
    ds = load_hub_dataset("openai/gsm8k", "main", split="test", data_dir=hub_dir)
    expected = gsm8k_test_rows(hub_dir)
    assert isinstance(ds, HubDataset) and ds.permutation is None
    assert len(ds) == len(expected) == 1319
    assert [ds[i] for i in range(len(ds))] == expected
    assert ds[-1] == expected[-1]


def test_shuffle_is_the_default_rng_permutation_of_the_rows(hub_dir):
    ds = load_hub_dataset("openai/gsm8k", "main", split="test", data_dir=hub_dir)
    expected = gsm8k_test_rows(hub_dir)
    for seed in (42, 7):
        permutation = np.random.default_rng(seed).permutation(len(expected))
        shuffled = ds.shuffle(seed)
        assert len(shuffled) == len(expected)
        assert np.array_equal(shuffled.permutation, permutation)
        assert [shuffled[i] for i in range(len(shuffled))] == [expected[p] for p in permutation]
    assert ds.permutation is None  # shuffle returns a new dataset
    assert ds.shuffle(42).shuffle(7)[0] == ds.shuffle(7)[0]  # as nanochat: a shuffle replaces the order


def test_jsonl_rows_and_the_data_dir_environment_variable(hub_dir, monkeypatch):
    path = hub_dir / "allenai/ai2_arc/ARC-Easy/test.jsonl"
    expected = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    monkeypatch.setenv("CHATTASKS_DATA_DIR", str(hub_dir))
    ds = load_hub_dataset("allenai/ai2_arc", "ARC-Easy", "test").shuffle(seed=42)
    permutation = np.random.default_rng(42).permutation(len(expected))
    assert len(ds) == 2376
    assert [ds[i] for i in range(len(ds))] == [expected[p] for p in permutation]


def test_a_task_written_the_nanochat_way_reads_what_chattasks_tasks_read(hub_dir):
    class NanochatStyleARC(Task):
        def __init__(self, subset, split, **kwargs):
            super().__init__(**kwargs)
            ds = load_hub_dataset("allenai/ai2_arc", subset, split=split, data_dir=hub_dir)
            self.ds = ds.shuffle(seed=42)

        @property
        def eval_type(self):
            return "categorical"

        def num_examples(self):
            return len(self.ds)

        def get_example(self, index):
            row = self.ds[index]
            return {"question": row["question"], "choices": row["choices"]["text"]}

    ours = ARC("ARC-Easy", "validation", data_dir=hub_dir)
    theirs = NanochatStyleARC("ARC-Easy", "validation")
    assert len(theirs) == len(ours) == 570
    for i in range(len(ours)):
        assert theirs[i] == {"question": ours[i]["question"], "choices": ours[i]["choices"]}


def test_hub_dataset_over_an_in_memory_table():
    table = pa.table({"x": list(range(100)), "y": [str(i) for i in range(100)]})
    ds = HubDataset(table)
    assert len(ds) == 100 and ds[3] == {"x": 3, "y": "3"} and ds.table is table
    shuffled = ds.shuffle(seed=42)
    permutation = np.random.default_rng(42).permutation(100)
    assert [shuffled[i]["x"] for i in range(100)] == permutation.tolist()
    with pytest.raises(IndexError, match="100"):
        shuffled[100]


def test_a_missing_split_names_where_it_looked(hub_dir):
    with pytest.raises(DatasetNotFound, match=r"ARC-Easy.*splits there: test, train, validation"):
        load_hub_dataset("allenai/ai2_arc", "ARC-Easy", split="dev", data_dir=hub_dir)
