"""render_mc: nanochat's multiple-choice prompt, byte for byte."""

import pytest

from chattasks import render_mc


def test_render_mc_exact_format():
    prompt = render_mc("What is 2+2?", ["A", "B", "C", "D"], ["3", "4", "5", "22"])
    assert prompt == (
        "Multiple Choice question: What is 2+2?\n"
        "- 3=A\n- 4=B\n- 5=C\n- 22=D\n"
        "\nRespond only with the letter of the correct answer."
    )


def test_render_mc_keeps_numeric_labels_and_no_space_before_the_letter():
    prompt = render_mc("Pick one", ["1", "2", "3"], ["red", "green", "blue"])
    assert "- green=2\n" in prompt
    assert "= 2" not in prompt


def test_render_mc_rejects_mismatched_letters_and_choices():
    with pytest.raises(ValueError, match="3 letters.*2 choices"):
        render_mc("q", ["A", "B", "C"], ["x", "y"])
