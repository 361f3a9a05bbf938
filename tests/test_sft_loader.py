"""Packing plans and the torch loaders: nanochat's rank stride, worker sharding, exact resume.

The mixture is real data (GSM8K, SpellingBee, SmolTalk-schema, CustomJSON) rendered with a
nanochat-style tokenizer (GPT-2's BPE plus nanochat's special tokens).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chattasks.sft.pack import Packer
from chattasks.sft.plan import PackingPlan
from chattasks.sft.special import SpecialTokenRenderer
from chattasks.task import TaskMixture
from chattasks.tasks.customjson import CustomJSON
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tasks.smoltalk import SmolTalk
from chattasks.tasks.spellingbee import SpellingBee

pytestmark = pytest.mark.filterwarnings(
    "ignore:This DataLoader will create:UserWarning"
)  # 3 workers on 2 cores

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MAX_LEN = 384


@pytest.fixture(scope="module")
def renderer(nanochat_tokenizer):
    return SpecialTokenRenderer(nanochat_tokenizer)


@pytest.fixture(scope="module")
def mixture(hub_dir, words_file):
    identity = CustomJSON(FIXTURES / "customjson" / "identity.jsonl")
    tasks = [
        GSM8K("main", "test", data_dir=hub_dir, stop=150),
        SmolTalk("test", data_dir=hub_dir, stop=150),
        SpellingBee(size=80, split="train", words_path=words_file),
        identity,
        identity,
    ]
    return TaskMixture(tasks, seed=7)


@pytest.fixture(scope="module")
def plan(mixture, renderer):
    return PackingPlan(mixture, renderer, MAX_LEN)


def rows_of(batches) -> list[list[int]]:
    return [row for batch in batches for row in np.asarray(batch["input_ids"]).tolist()]


# ----- the plan -----------------------------------------------------------------------------------


def test_the_plan_gives_the_rows_streaming_packing_gives(mixture, renderer, plan):
    docs = renderer.render_batch(list(mixture))
    packer = Packer(MAX_LEN, renderer.pad_id)
    streamed = [b.input_ids.tolist() for b in packer.pack(docs, batch_size=1)]
    planned = [b.input_ids.tolist() for b in plan.batches(batch_size=1)]
    assert planned == streamed
    assert plan.report == packer.report
    assert plan.report.truncated_conversations > 0  # some SmolTalk dialogues are longer than MAX_LEN


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_every_row_of_the_mixture_is_read_exactly_once_per_epoch(mixture, renderer, plan, world_size):
    plans = [
        plan if world_size == 1 else PackingPlan(mixture, renderer, MAX_LEN, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    seen = np.concatenate([np.concatenate([p.doc_order, p.dropped]) for p in plans])
    assert sorted(seen.tolist()) == list(range(len(mixture)))
    for rank, p in enumerate(plans):  # nanochat's stride: rank r reads rows r, r+w, r+2w, ...
        assert all(index % world_size == rank for index in p.doc_order.tolist())


def test_rows_can_be_rendered_alone_and_in_any_order(plan):
    rows = [5, 0, plan.num_rows - 1]
    together = plan.render_rows(rows).input_ids.tolist()
    alone = [plan.render_rows([r]).input_ids.tolist()[0] for r in rows]
    assert together == alone
    with pytest.raises(IndexError, match=f"row {plan.num_rows} out of range"):
        plan.render_rows([plan.num_rows])


def test_a_saved_plan_loads_back_identical(plan, mixture, renderer, tmp_path):
    plan.save(tmp_path / "plan.npz")
    loaded = PackingPlan.load(tmp_path / "plan.npz", mixture, renderer)
    assert loaded.fingerprint() == plan.fingerprint() and loaded.report == plan.report
    assert rows_of([vars(b) for b in loaded.batches(4)]) == rows_of([vars(b) for b in plan.batches(4)])
    with pytest.raises(ValueError, match="made for a task of"):
        PackingPlan.load(tmp_path / "plan.npz", mixture[:10], renderer)


def test_shuffled_epochs_are_deterministic_and_differ(plan):
    first, again = plan.row_order(0, shuffle=True, seed=3), plan.row_order(0, shuffle=True, seed=3)
    second = plan.row_order(1, shuffle=True, seed=3)
    assert first.tolist() == again.tolist() and first.tolist() != second.tolist()
    assert sorted(second.tolist()) == list(range(plan.num_rows))


# ----- torch --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_the_map_style_dataset_serves_plan_rows_as_tensors(torch, plan):
    from chattasks.sft.loader import PackedDataset

    dataset = PackedDataset(plan)
    assert len(dataset) == plan.num_rows
    row = dataset[3]
    assert set(row) == {"input_ids", "labels", "position_ids", "loss_mask", "document_ids"}
    assert row["input_ids"].dtype == torch.long and row["input_ids"].shape == (MAX_LEN,)
    expected = plan.render_rows([3])
    assert row["input_ids"].tolist() == expected.input_ids[0].tolist()
    assert row["labels"].tolist() == expected.labels()[0].tolist()
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    batch = next(iter(loader))
    assert batch["input_ids"].tolist() == plan.render_rows([0, 1, 2, 3]).input_ids.tolist()


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_the_batch_stream_is_the_same_for_any_number_of_workers(torch, plan, workers):
    from chattasks.sft.loader import PackedIterableDataset, SFTDataLoader

    expected = rows_of([vars(b) for b in plan.batches(4)])
    loader = SFTDataLoader(PackedIterableDataset(plan, 4), num_workers=workers)
    assert rows_of(loader) == expected
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batch"] == 0


@pytest.mark.parametrize(("before", "after"), [(2, 0), (0, 3)])
def test_resume_after_interrupt_gives_exactly_the_uninterrupted_stream(torch, plan, before, after):
    from chattasks.sft.loader import PackedIterableDataset, SFTDataLoader

    def loader(workers):
        return SFTDataLoader(PackedIterableDataset(plan, 3, shuffle=True, seed=11), num_workers=workers)

    uninterrupted = rows_of(loader(0))
    first = loader(before)
    seen = []
    for batch in first:
        seen.append(batch)
        if len(seen) == 5:
            break  # interrupted mid-epoch
    state = first.state_dict()
    assert state["batch"] == 5
    resumed = loader(after)
    resumed.load_state_dict(state)
    assert rows_of(seen) + rows_of(resumed) == uninterrupted


def test_state_from_another_plan_or_batching_is_refused(torch, plan, mixture, renderer):
    from chattasks.sft.loader import PackedIterableDataset

    state = PackedIterableDataset(plan, 4).state_dict()
    with pytest.raises(ValueError, match="state batch_size is 4, this dataset has 5"):
        PackedIterableDataset(plan, 5).load_state_dict(state)
    other = PackingPlan(mixture, renderer, MAX_LEN // 2)
    with pytest.raises(ValueError, match="state fingerprint"):
        PackedIterableDataset(other, 4).load_state_dict(state)


def test_epochs_follow_each_other_in_process(torch, plan):
    from chattasks.sft.loader import PackedIterableDataset

    dataset = PackedIterableDataset(plan, 8, shuffle=True, seed=1)
    epoch0, epoch1 = rows_of(dataset), rows_of(dataset)
    assert dataset.epoch == 2 and len(epoch0) == len(epoch1) == plan.num_rows
    assert epoch0 != epoch1 and sorted(epoch0) == sorted(epoch1)
