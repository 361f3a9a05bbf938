"""Best-fit packing: nanochat's buffered algorithm, the row layout, and exact accounting."""

from __future__ import annotations

import numpy as np
import pytest

from chattasks.sft.pack import PackedBatch, Packer, PackReport, assemble, best_fit
from chattasks.sft.render import RenderedConversation


def doc(length: int, trained: int | None = None, start: int = 0) -> RenderedConversation:
    """A conversation of ``length`` tokens (ids start, start+1, ...), its last ``trained`` tokens trained."""
    trained = length // 2 if trained is None else trained
    mask = np.zeros(length, dtype=np.uint8)
    mask[length - trained :] = 1
    return RenderedConversation(np.arange(start, start + length, dtype=np.int32), mask)


def reference_best_fit(lengths: list[int], max_len: int, buffer_size: int) -> list[list[int]]:
    """nanochat's packer restated plainly: refill the buffer before each pick, take the longest
    conversation that fits (the first such in buffer order), pad when none fits. Returns indices."""
    pending = list(range(len(lengths)))
    buffer: list[int] = []
    rows, row, room = [], [], max_len
    while True:
        while pending and len(buffer) < buffer_size:
            buffer.append(pending.pop(0))
        if not buffer:
            break
        fitting = [i for i in buffer if lengths[i] <= room]
        if not fitting:
            rows.append(row)
            row, room = [], max_len
            continue
        pick = max(fitting, key=lambda i: (lengths[i], -buffer.index(i)))
        buffer.remove(pick)
        row.append(pick)
        room -= lengths[pick]
        if room == 0:
            rows.append(row)
            row, room = [], max_len
    if row:
        rows.append(row)
    return rows


@pytest.mark.parametrize("buffer_size", [1, 3, 100])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_fit_is_nanochats_buffered_best_fit(buffer_size, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 200, size=500).tolist() + [200] * 5 + [1] * 5
    rows = list(best_fit(range(len(lengths)), 200, length=lambda i: lengths[i], buffer_size=buffer_size))
    assert rows == reference_best_fit(lengths, 200, buffer_size)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))  # each exactly once
    assert all(sum(lengths[i] for i in row) <= 200 for row in rows)


def test_best_fit_prefers_the_longest_that_fits_and_the_earliest_of_equals():
    lengths = {"a": 6, "b": 3, "c": 3, "d": 4, "e": 1}
    rows = list(best_fit("abcde", 10, length=lambda k: lengths[k]))
    assert rows == [["a", "d"], ["b", "c", "e"]]


def test_best_fit_refuses_items_that_cannot_fit_an_empty_row():
    with pytest.raises(ValueError, match="item 1 has length 11; expected 1..10"):
        list(best_fit([3, 11], 10, length=lambda n: n))
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        list(best_fit([], 0))


def test_assemble_lays_out_rows_with_positions_restarting_per_conversation():
    batch = assemble([[doc(3, 1), doc(2, 2, start=10)], [doc(4, 4, start=20)]], max_len=6, pad_id=99)
    assert batch.input_ids.tolist() == [[0, 1, 2, 10, 11, 99], [20, 21, 22, 23, 99, 99]]
    assert batch.loss_mask.tolist() == [[0, 0, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]]
    assert batch.document_ids.tolist() == [[0, 0, 0, 1, 1, -1], [0, 0, 0, 0, -1, -1]]
    with pytest.raises(ValueError, match="row 0: conversations total more than max_len=4"):
        assemble([[doc(3), doc(2)]], max_len=4, pad_id=0)


def test_labels_and_nanochat_shifted_targets():
    batch = assemble([[doc(3, 1), doc(2, 2, start=10)]], max_len=6, pad_id=99)
    assert batch.labels().tolist() == [[-100, -100, 2, 10, 11, -100]]
    inputs, targets = batch.shifted()
    assert inputs.tolist() == [[0, 1, 2, 10, 11]]
    assert targets.tolist() == [[-1, 2, 10, 11, -1]]


def test_packer_truncates_drops_untrained_and_counts_everything():
    # with max_len 8: doc 1 is cut to its first 8 tokens, which holds none of its 3 trained ones, so it
    # is dropped; doc 2 (nothing trained) is cut and dropped; doc 3 loses 1 of its 9 trained tokens;
    # doc 4 has nothing trained and is dropped whole.
    docs = [doc(5, 2), doc(12, 3), doc(12, 0), doc(9, 9, start=50), doc(3, 0)]
    packer = Packer(8, pad_id=0)
    rows = list(packer.rows(docs))
    assert [[len(d) for d in row] for row in rows] == [[8], [5]]
    assert packer.report == PackReport(
        conversations=5,
        rows=2,
        tokens=8 + 5,
        trained_tokens=8 + 2,
        padding_tokens=3,
        truncated_conversations=3,
        truncated_tokens=4 + 4 + 1,
        truncated_trained_tokens=3 + 0 + 1,
        dropped_untrained=3,
        packed_conversations=2,
    )
    assert packer.report.padding_fraction == pytest.approx(3 / 16)


def test_a_conversation_whose_trained_tokens_all_fall_past_max_len_is_dropped_not_emitted():
    packer = Packer(4, pad_id=0)
    assert list(packer.pack([doc(10, 3)], batch_size=2)) == []
    assert packer.report.dropped_untrained == 1 and packer.report.rows == 0


def test_every_packed_row_holds_a_trained_token():
    rng = np.random.default_rng(3)
    docs = [doc(int(n), int(t)) for n, t in zip(rng.integers(1, 60, 300), rng.integers(0, 3, 300))]
    for batch in Packer(64, pad_id=0).pack(docs, batch_size=8):
        assert isinstance(batch, PackedBatch) and batch.input_ids.shape[1] == 64
        assert (batch.loss_mask.sum(axis=1) > 0).all()


def test_pack_batches_rows_and_keeps_the_last_partial_batch():
    batches = list(Packer(10, pad_id=0).pack([doc(10, 1) for _ in range(7)], batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]


def test_reports_merge_across_ranks():
    a = PackReport(conversations=2, rows=1, tokens=5, padding_tokens=3)
    b = PackReport(conversations=3, rows=2, tokens=7, padding_tokens=1)
    merged = a.merge(b)
    assert (merged.conversations, merged.rows, merged.tokens, merged.padding_tokens) == (5, 3, 12, 4)
    assert merged.as_dict()["padding_fraction"] == pytest.approx(4 / 16)
