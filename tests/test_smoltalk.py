"""SmolTalk: nanochat's rows in nanochat's order, every row checked, malformed rows named."""

from __future__ import annotations

import pytest

from chattasks import (
    DatasetNotFound,
    InvalidConversation,
    SmolTalk,
    TaskNotEvaluable,
    get_task,
    validate_conversation,
)
from chattasks.tasks.smoltalk import message_problems

MALFORMED = {  # Hub row of tests/fixtures/smoltalk test.jsonl -> a phrase of its fault
    2: "message 0: role 'assistant'",
    3: "expected at least 2 messages, got 1",
    4: "after the system message, got 1",
    6: "message 1: content must be a string, got NoneType",
    7: "message 1: role 'user'",
    8: "message 2: role 'system'",
}


@pytest.fixture
def smol_fixture(fixtures_dir):
    return fixtures_dir / "smoltalk"


def test_stand_in_test_split_size_and_first_conversation(hub_dir):
    task = SmolTalk("test", data_dir=hub_dir)
    assert len(task) == task.num_examples() == 2300
    first = task[0]["messages"]
    assert first[0] == {"role": "user", "content": "Can I share an unpopular opinion with you?"}
    assert [m["role"] for m in first[:2]] == ["user", "assistant"]
    assert set(task[0]) == {"messages"}


def test_every_real_conversation_validates(hub_dir):
    task = SmolTalk("test", data_dir=hub_dir)
    assert task.validate_all() == 2300
    for conversation in task:
        validate_conversation(conversation)


def test_rows_match_nanochat_message_for_message(hub_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    files = sorted(str(p) for p in (hub_dir / "HuggingFaceTB/smol-smoltalk/default").glob("test*"))
    reference = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path))
    reference = reference.shuffle(seed=42)  # what nanochat's SmolTalk reads
    task = SmolTalk("test", data_dir=hub_dir)
    assert [c["messages"] for c in task] == reference["messages"]


def test_the_mirror_has_no_train_split(hub_dir):
    with pytest.raises(DatasetNotFound, match="split 'train'"):
        SmolTalk("train", data_dir=hub_dir)


def test_split_must_be_train_or_test(smol_fixture):
    with pytest.raises(ValueError, match="train, test; got 'validation'"):
        SmolTalk("validation", data_dir=smol_fixture)


def test_is_a_training_only_generative_task(smol_fixture):
    task = SmolTalk("train", data_dir=smol_fixture)
    assert task.eval_type == "generative" and not task.is_evaluable
    with pytest.raises(TaskNotEvaluable):
        task.evaluate(task[0], "anything")


def test_system_message_and_unicode_come_through_untouched(smol_fixture):
    task = SmolTalk("train", data_dir=smol_fixture)
    conversations = [c["messages"] for c in task]
    with_system = [m for m in conversations if m[0]["role"] == "system"]
    assert with_system == [
        [
            {"role": "system", "content": "Système en français."},
            {"role": "user", "content": "Bonjour ?"},
            {"role": "assistant", "content": "Bonjour ! 😊"},
        ]
    ]


def test_a_malformed_row_raises_on_read_naming_split_and_row(smol_fixture):
    task = SmolTalk("test", data_dir=smol_fixture)  # construction does not check rows
    order = task.rows.order
    failed = {}
    for index in range(len(task)):
        try:
            validate_conversation(task[index])
        except InvalidConversation as exc:
            hub_row = int(order[index])
            assert str(exc).startswith(
                f"HuggingFaceTB/smol-smoltalk [test] row {index} (Hub row {hub_row}): "
            )
            failed[hub_row] = str(exc)
    assert sorted(failed) == sorted(MALFORMED)
    for hub_row, phrase in MALFORMED.items():
        assert phrase in failed[hub_row]


def test_validate_all_reports_every_faulty_row(smol_fixture):
    task = SmolTalk("test", data_dir=smol_fixture)
    with pytest.raises(InvalidConversation) as raised:
        task.validate_all()
    problems = raised.value.problems
    assert [int(p.split("Hub row ")[1].split(")")[0]) for p in problems] == sorted(MALFORMED)
    for problem in problems:
        index = int(problem.split("] row ")[1].split(" ")[0])
        assert f"(Hub row {int(task.rows.order[index])})" in problem


def test_validate_all_caps_the_report(smol_fixture):
    with pytest.raises(InvalidConversation, match=r"\(and 4 more rows\)$") as raised:
        SmolTalk("test", data_dir=smol_fixture).validate_all(max_errors=2)
    assert len(raised.value.problems) == 2


def test_message_problems_follows_nanochat_rules():
    user, assistant = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
    system = {"role": "system", "content": "s"}
    assert message_problems([user, assistant]) == []
    assert message_problems([system, user, assistant]) == []
    assert message_problems([user, assistant, user]) == []  # nanochat does not require a final answer
    assert message_problems([system, user]) != []
    assert message_problems([]) != []
    assert message_problems([user, {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]) != []


def test_slices_are_views_over_the_same_rows(hub_dir):
    task = SmolTalk("test", data_dir=hub_dir)
    view = SmolTalk("test", data_dir=hub_dir, start=10, stop=20)
    assert len(view) == 10 and view[0] == task[10] and task[10:20:3][1] == task[13]
    assert task[-1] == task[2299]
    with pytest.raises(IndexError):
        task.get_example(2300)


def test_iterating_reads_in_batches_what_indexing_reads(hub_dir):
    task = SmolTalk("test", data_dir=hub_dir)
    for view in (task, task[5:2000:7], task[::-1], task[100:90]):
        assert list(view) == [view[i] for i in range(len(view))]


def test_iterating_checks_rows_too(smol_fixture):
    with pytest.raises(InvalidConversation, match=r"\[test\] row \d+ \(Hub row (2|3|4|6|7|8)\)"):
        list(SmolTalk("test", data_dir=smol_fixture))


def test_nanochat_import_path_and_registry(hub_dir):
    from tasks.smoltalk import SmolTalk as NanochatSmolTalk

    assert NanochatSmolTalk is SmolTalk
    task = get_task("SmolTalk", data_dir=hub_dir)
    assert isinstance(task, SmolTalk) and task.split == "test"


def test_conversation_texts_are_the_messages_joined_in_the_views_order(hub_dir):
    task = SmolTalk("test", data_dir=hub_dir)
    for view in (task, task[5:2000:7], task[::-1], task[100:90]):
        expected = ["\n".join(m["content"] for m in c["messages"]) for c in view]
        assert list(view.conversation_texts()) == expected


def test_conversation_texts_skip_the_checks_but_not_a_null_content(smol_fixture):
    task = SmolTalk("test", data_dir=smol_fixture)
    rows = [int(task.rows.order[i]) for i in range(len(task))]
    after_null = task[rows.index(6) + 1 :]  # Hub row 6 has a null content; malformed rows follow it
    assert {2, 3, 4, 7, 8} <= set(rows[rows.index(6) + 1 :])
    with pytest.raises(InvalidConversation):
        list(after_null)
    raw = task.rows.table.column("messages").to_pylist()
    expected = ["\n".join(m["content"] for m in raw[row]) for row in rows[rows.index(6) + 1 :]]
    assert list(after_null.conversation_texts()) == expected
    with pytest.raises(InvalidConversation, match=r"Hub row 6\): .*content must be a string, got NoneType"):
        list(task.conversation_texts())
