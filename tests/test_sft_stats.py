"""Token accounting per task of a mixture, and ``chattasks stats``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.sft.spec import load_spec
from chattasks.sft.stats import mixture_stats

pytest.importorskip("transformers")

SPEC = Path(__file__).resolve().parent / "fixtures" / "sft" / "mixture.toml"


@pytest.fixture(scope="module")
def tokenizer_file(nanochat_tokenizer, tmp_path_factory) -> Path:
    """A nanochat-style tokenizer.json: GPT-2's BPE plus nanochat's special tokens."""
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    nanochat_tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def mixture(hub_dir, words_file):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHATTASKS_WORDS_FILE", str(words_file))
        return load_spec(SPEC).build(data_dir=hub_dir)


@pytest.fixture(scope="module")
def renderer(tokenizer_file):
    from chattasks.sft.render import make_renderer
    from chattasks.sft.tokenizer import load_tokenizer

    return make_renderer(load_tokenizer(tokenizer_file))


@pytest.mark.parametrize("max_len", [None, 256])
def test_stats_equal_rendering_every_row_of_the_mixture(mixture, renderer, max_len):
    stats = mixture_stats(mixture, renderer, max_len=max_len)
    expected: dict[str, Counter] = {}
    rows = [mixture.task[i] for i in range(len(mixture))]
    for i, doc in enumerate(renderer.render_batch(rows)):
        kept = doc.truncate(max_len)
        count = expected.setdefault(mixture.label_of(i), Counter())
        count.update(
            conversations=1,
            tokens=len(kept),
            trained_tokens=kept.num_trained,
            truncated=int(len(kept) < len(doc)),
            dropped=int(kept.num_trained == 0),
        )
    got = {t.label: t for t in stats.tasks}
    for label, count in expected.items():
        for key in ("conversations", "tokens", "trained_tokens", "truncated", "dropped"):
            assert getattr(got[label], key) == count[key], (label, key)
    assert stats.total.trained_tokens == sum(c["trained_tokens"] for c in expected.values())
    assert sum(t.share for t in stats.tasks) == pytest.approx(1.0)
    if max_len is None:
        assert stats.total.truncated == 0
    else:
        assert stats.total.truncated > 0


def test_repeats_count_every_copy(mixture, renderer):
    stats = {t.label: t for t in mixture_stats(mixture, renderer).tasks}
    assert stats["identity"].conversations == 6  # 3 conversations listed twice
    assert stats["GSM8K"].conversations == 300


def test_the_stats_command_prints_a_table_and_json(tokenizer_file, hub_dir, words_file, monkeypatch):
    monkeypatch.setenv("CHATTASKS_WORDS_FILE", str(words_file))
    runner = CliRunner()
    args = ["stats", str(SPEC), "-t", str(tokenizer_file), "--data-dir", str(hub_dir), "--max-len", "256"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for label in ("SmolTalk", "identity", "GSM8K", "SpellingBee", "total", "trunc", "SpecialTokenRenderer"):
        assert label in result.output
    as_json = runner.invoke(app, [*args, "--json", "--no-progress"])
    data = json.loads(as_json.output)
    assert data["max_len"] == 256 and data["total"]["conversations"] == 826
    assert [t["label"] for t in data["tasks"]] == ["SmolTalk", "identity", "GSM8K", "SpellingBee"]


def test_the_stats_command_reports_a_bad_spec_in_one_line(tmp_path, tokenizer_file):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tasks]]\ntask = "GSM8K"\nrepeat = 0\n')
    result = CliRunner().invoke(app, ["stats", str(bad), "-t", str(tokenizer_file)])
    assert result.exit_code == 1
    assert "key 'repeat': expected an integer >= 1, got 0" in result.output
