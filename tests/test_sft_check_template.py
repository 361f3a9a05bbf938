"""check-template: every probe's mask compared token by token with an independent oracle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from shared_data import SMOLLM2_TOKENIZER, require
from typer.testing import CliRunner

from chattasks.cli import app
from chattasks.sft.check_template import PROBES, check_template
from chattasks.sft.special import SpecialTokenRenderer
from chattasks.sft.template import ChatTemplateRenderer

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "sft" / "smollm2_chat_template.jinja"


@pytest.fixture(scope="module")
def smollm2(smollm2_tokenizer):
    return smollm2_tokenizer


def test_smollm2s_chat_template_gives_exact_masks_on_every_probe(smollm2):
    report = check_template(smollm2)
    assert report.renderer == "ChatTemplateRenderer"
    assert [r.name for r in report.results] == list(PROBES)
    assert report.ok, [(r.name, r.problems, r.wrong) for r in report.results]
    assert all(r.unchecked == 0 and r.mask.sum() > 0 for r in report.results)


def test_nanochat_special_tokens_give_exact_masks_on_every_probe(nanochat_tokenizer):
    report = check_template(nanochat_tokenizer)
    assert report.renderer == "SpecialTokenRenderer" and report.ok


class AllOnes(SpecialTokenRenderer):
    """nanochat's lost-mask bug: every token trained."""

    def render_batch(self, conversations):
        return [replace(r, mask=np.ones_like(r.mask)) for r in super().render_batch(conversations)]


class NoEndOfTurn(ChatTemplateRenderer):
    """A renderer that forgets to train the end-of-turn token."""

    def render_batch(self, conversations):
        out = []
        for r in super().render_batch(conversations):
            mask = r.mask.copy()
            mask[np.flatnonzero(r.ids == self.encoder.token_id("<|im_end|>"))] = 0
            out.append(replace(r, mask=mask))
        return out


def test_a_mask_of_all_ones_is_reported_on_every_untrained_token(nanochat_tokenizer):
    renderer = AllOnes(nanochat_tokenizer)
    report = check_template(renderer)
    assert not report.ok
    for result in report.results:
        assert len(result.wrong) == int((result.expected == 0).sum()) > 0
        assert all(token.got == 1 and token.expected == 0 for token in result.wrong)
    first = report.results[0].wrong[0]
    assert (first.index, first.token) == (0, "<|bos|>")


def test_an_untrained_end_of_turn_is_reported_token_by_token(smollm2):
    report = check_template(NoEndOfTurn(smollm2))
    wrong = {(w.probe, w.token, w.got, w.expected) for w in report.wrong}
    assert wrong == {(name, "<|im_end|>", 0, 1) for name in PROBES}
    assert len(report.results[1].wrong) == 3  # the multi-turn probe has three assistant turns


def test_a_generation_prompt_that_is_not_a_token_prefix_is_reported(smollm2):
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant: {% endif %}"
    )
    report = check_template(smollm2, chat_template=template)
    assert not report.ok and not report.wrong  # no false alarms on tokens the oracle cannot judge
    assert all("generation prompt is not a token prefix" in r.problems[0] for r in report.results)


def test_a_template_the_renderer_refuses_is_reported_per_probe(smollm2):
    report = check_template(smollm2, chat_template="{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    assert not report.ok
    assert all("not a special end-of-turn token" in r.problems[0] for r in report.results)


def test_the_check_template_command(tmp_path):
    path = require(SMOLLM2_TOKENIZER, "SmolLM2 tokenizer")
    runner = CliRunner()
    good = runner.invoke(app, ["check-template", str(path), "--chat-template", str(TEMPLATE)])
    assert good.exit_code == 0, good.output
    assert "all masks exact" in good.output and "tool use" in good.output
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    bad = runner.invoke(app, ["check-template", str(path), "--chat-template", str(broken)])
    assert bad.exit_code == 1 and "FAIL" in bad.output and "end-of-turn" in bad.output
