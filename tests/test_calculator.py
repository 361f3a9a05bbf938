"""The calculator: arithmetic and 'text'.count('c'), one refused hostile input per case, and GSM8K's calls."""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from chattasks.errors import ToolError
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tools import calculate, use_calculator


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12/60", 0.2),
        ("0.2*50", 10.0),
        ("1,000*3", 3000),
        ("  1 + 2 ", 3),
        ("-(3+4)*+2", -14),
        ("7//2", 3),
        ("7%3", 1),
        ("2**10", 1024),
        ("2**-1", 0.5),
        (".5+.25", 0.75),
        ("'strawberry'.count('r')", 3),
        ('"banana".count("a") * 2', 6),
        ("'a,b,c'.count(',')", 2),  # commas inside a string literal are kept
    ],
)
def test_evaluates(expression, expected):
    assert calculate(expression) == expected
    assert use_calculator(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo pwned')", "only call allowed"),
        ("open('/etc/passwd').read()", "only call allowed"),
        ("(1).__class__", "Attribute"),
        ("().__class__.__bases__[0].__subclasses__()", "only call allowed"),
        ("x + 1", "Name"),
        ("[1]", "List"),
        ("[1, 2]", "cannot parse"),  # the commas go first
        ("lambda: 1", "Lambda"),
        ("1 if 1 else 2", "IfExp"),
        ("1 < 2", "Compare"),
        ("f'{1}'", "JoinedStr"),
        ("True + 1", "True"),
        ("1j", "1j"),
        ("b'x'", "b'x'"),
        ("'abc'.upper()", "only call allowed"),
        ("'abc'.count('a', 1)", "exactly one"),
        ("'abc'.count(x)", "string literal"),
        ("len('abc')", "only call allowed"),
        ("'x' * 5", "used as a number"),
        ("'a' * 10**9", "used as a number"),
        ("'abc'", "is a string"),
        ("2^3", "write **"),
        ("1 << 4000", "LShift"),
        ("9**9**9", "exponent"),
        ("2**100000", "exponent"),
        ("7**4000", "bits"),
        ("10**1000 * 10**1000 * 10**1000 * 10**1000 * 10**1000", "bits"),
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("1e308 * 10", "not a finite number"),
        ("10.0**400", "too large"),
        ("(-8)**0.5", "complex"),
        ("05 + 1", "cannot parse"),
        ("", "cannot parse"),
        ("1 +", "cannot parse"),
        ("1" * 1001, "limit"),
        ("(" * 400 + "1" + ")" * 400, "cannot parse"),
        ("-" * 900 + "1", ""),  # deep but short: evaluates, or is refused; never crashes
    ],
)
def test_refuses(expression, message):
    start = time.perf_counter()
    try:
        calculate(expression)
    except ToolError as exc:
        assert message in str(exc)
        assert use_calculator(expression) is None
    else:
        assert message == "", f"{expression[:40]!r} was not refused"
    assert time.perf_counter() - start < 1.0


def test_refuses_a_non_string():
    with pytest.raises(ToolError, match="expected a string"):
        calculate(5)  # type: ignore[arg-type]


def test_tool_error_is_a_value_error():
    with pytest.raises(ValueError):
        calculate("import os")


def _reproduces(value: float, output: str) -> bool:
    try:
        return math.isclose(value, float(output), rel_tol=1e-9, abs_tol=1e-9)
    except ValueError:
        return False


@pytest.mark.parametrize("subset", ["main", "socratic"])
def test_reproduces_every_gsm8k_tool_call(hub_dir, fixtures_dir, subset, capsys):
    """Each ``python`` part, run through the calculator, gives its ``python_output`` (float rounding aside)."""
    listed = json.loads((fixtures_dir / "gsm8k" / "calculator_exceptions.json").read_text())["calls"]
    exceptions = {(call["expression"], call["output"]) for call in listed}
    calls = exact = close = 0
    unexplained, seen = [], set()
    for split in ("train", "test"):
        for conversation in GSM8K(subset, split, data_dir=hub_dir):
            parts = conversation["messages"][-1]["content"]
            for call, output in zip(parts, parts[1:]):
                if call["type"] != "python":
                    continue
                calls += 1
                value = calculate(call["text"])
                if re.fullmatch(r"-?\d*\.?\d+", output["text"]) and value == float(output["text"]):
                    exact += 1
                elif _reproduces(value, output["text"]):
                    close += 1
                elif (call["text"], output["text"]) in exceptions:
                    seen.add((call["text"], output["text"]))
                    assert math.isclose(value, calculate(output["text"]))  # the listed reason holds
                else:
                    unexplained.append((call["text"], output["text"], value))
    with capsys.disabled():
        print(
            f"\nGSM8K {subset}: {calls} tool calls, {exact} reproduce exactly, {close} up to float rounding, "
            f"{calls - exact - close} listed in fixtures/gsm8k/calculator_exceptions.json"
        )
    assert not unexplained, unexplained[:10]
    assert seen == exceptions
    assert calls == 27998
