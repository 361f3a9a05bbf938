"""Exporting a mixture as {"messages": [...]} shards: lossless JSONL, and parquet for datasets and TRL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared_data import SMOLLM2_TOKENIZER, require
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.sft.export import export
from chattasks.sft.spec import load_spec
from chattasks.tasks.gsm8k import GSM8K

SPEC = Path(__file__).resolve().parent / "fixtures" / "sft" / "mixture.toml"
TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "sft" / "smollm2_chat_template.jinja"


@pytest.fixture(scope="module")
def mixture(hub_dir, words_file):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHATTASKS_WORDS_FILE", str(words_file))
        return load_spec(SPEC).build(data_dir=hub_dir)


@pytest.fixture(scope="module")
def parquet_dir(mixture, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parquet")
    export(mixture, out, format="parquet", shard_size=300)
    return out


def test_jsonl_keeps_every_conversation_exactly_in_mixture_order(mixture, tmp_path):
    files = export(mixture, tmp_path, format="jsonl", shard_size=300)
    assert [f.name for f in files] == [f"train-0000{i}-of-00003.jsonl" for i in range(3)]
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(mixture) == 826
    for i, row in enumerate(rows):
        assert row["messages"] == mixture.task[i]["messages"]  # tool parts kept as lists of parts
        assert row["source"] == mixture.label_of(i)


def test_parquet_loads_with_datasets_in_the_messages_schema(mixture, parquet_dir, hub_dir):
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(parquet_dir / "*.parquet"), split="train")
    assert loaded.num_rows == len(mixture)
    assert set(loaded.features) == {"messages", "source"}
    assert all(isinstance(m["content"], str) for row in loaded.select(range(50)) for m in row["messages"])
    # a GSM8K answer written back with <<code=output>> is the dataset's own answer text, byte for byte
    raw = {row["question"]: row["answer"] for row in GSM8K("main", "train", data_dir=hub_dir, stop=150).rows}
    checked = 0
    for row in loaded:
        if row["source"] == "GSM8K":
            user, assistant = row["messages"]
            assert assistant["content"] == raw[user["content"]]
            assert [p["type"] for p in assistant["parts"]][:3] == ["text", "python", "python_output"]
            assert user["parts"] is None
            checked += 1
    assert checked == 300


def test_unknown_formats_and_sizes_are_refused(mixture, tmp_path):
    with pytest.raises(ValueError, match="format must be one of jsonl, parquet, got 'csv'"):
        export(mixture, tmp_path, format="csv")
    with pytest.raises(ValueError, match="shard_size must be >= 1"):
        export(mixture, tmp_path, shard_size=0)


def test_the_export_command_writes_shards(tmp_path, hub_dir, words_file, monkeypatch):
    monkeypatch.setenv("CHATTASKS_WORDS_FILE", str(words_file))
    args = ["export", str(SPEC), "--format", "parquet", "--out", str(tmp_path), "--shard-size", "500"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(hub_dir)])
    assert result.exit_code == 0, result.output
    assert "wrote 826 conversations to 2 parquet file(s)" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    bad = CliRunner().invoke(app, [*args[:2], "--format", "csv", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "'csv'" in bad.output


@pytest.mark.slow
def test_trl_sft_trainer_tokenizes_the_export_exactly_as_our_template_renderer(parquet_dir):
    """TRL's SFTTrainer takes the parquet as conversational data; its ids are our ChatTemplateRenderer's."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    transformers = pytest.importorskip("transformers")
    smollm2 = require(SMOLLM2_TOKENIZER, "SmolLM2 tokenizer")
    from chattasks.sft.template import ChatTemplateRenderer

    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(smollm2))
    tokenizer.chat_template = TEMPLATE.read_text()
    tokenizer.pad_token = tokenizer.eos_token = "<|im_end|>"
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    rows = datasets.load_dataset("parquet", data_files=str(parquet_dir / "*.parquet"), split="train").select(
        range(60)
    )
    trainer = trl.SFTTrainer(
        model=transformers.LlamaForCausalLM(config),
        args=trl.SFTConfig(output_dir=str(parquet_dir / "trl"), max_length=None, report_to=[], use_cpu=True),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    renderer = ChatTemplateRenderer(tokenizer)
    for row, tokenized in zip(rows, trainer.train_dataset):
        conversation = {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}
        assert tokenized["input_ids"] == renderer.render_batch([conversation])[0].ids.tolist()
