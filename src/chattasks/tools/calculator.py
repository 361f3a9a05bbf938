"""The calculator tool behind the ``python`` parts of GSM8K and SpellingBee conversations.

``calculate(expression)`` evaluates exactly two kinds of expression and refuses everything else
with a ``ToolError`` that says why:

- arithmetic on int and float literals: ``+ - * / // % **``, unary ``+``/``-`` and parentheses,
  e.g. ``12/60`` -> ``0.2``; commas are dropped first (``1,000*3`` is ``1000*3``) unless the
  expression holds a string literal;
- counting a character in a string literal, ``'strawberry'.count('r')`` -> ``3``, also as an
  operand of arithmetic (``'banana'.count('a') * 2``).

The expression is parsed with ``ast`` and walked node by node against a whitelist; nothing is
ever handed to ``eval`` or ``exec``, so there are no names, attributes (other than ``.count``
on a string literal), calls, comprehensions or imports to abuse. Work is bounded: expressions
longer than ``MAX_EXPRESSION_LENGTH`` characters, integers wider than ``MAX_INT_BITS`` bits
(checked *before* a power is computed), non-finite floats and exponents beyond
``MAX_EXPONENT`` are refused, so no input can make it run long or allocate much; no timer or
signal is needed (nanochat's SIGALRM timeout works only in the main thread). It runs in the
calling process: it is a whitelist evaluator, not a sandbox for code.

``use_calculator(expression)`` is nanochat's engine-facing spelling: the value, or None when the
calculator refuses.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from chattasks.errors import ToolError

Number = int | float

MAX_EXPRESSION_LENGTH = 1000
MAX_INT_BITS = 4096
MAX_EXPONENT = 4096

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _strip_commas(expression: str) -> str:
    """Drop thousands separators: every comma, unless the expression holds a string literal."""
    if "'" in expression or '"' in expression:
        return expression
    return expression.replace(",", "")


def calculate(expression: str) -> Number:
    """Evaluate an arithmetic or ``'text'.count('c')`` expression; ToolError on anything else."""
    if not isinstance(expression, str):
        raise ToolError(f"calculator: expected a string expression, got {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolError(
            f"calculator: expression of {len(expression)} characters (limit {MAX_EXPRESSION_LENGTH})"
        )
    text = _strip_commas(expression).strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"calculator: cannot parse {expression!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ToolError(f"calculator: cannot parse {expression!r}") from None
    try:
        value = _evaluate(tree.body)
    except RecursionError:
        raise ToolError(f"calculator: {expression!r} is nested too deeply") from None
    if isinstance(value, str):
        raise ToolError(f"calculator: {expression!r} is a string, not a number or a count")
    return value


def use_calculator(expression: str) -> Number | None:
    """nanochat's engine-facing calculator: the value, or None when ``calculate`` refuses."""
    try:
        return calculate(expression)
    except ToolError:
        return None


def _evaluate(node: ast.AST) -> Number | str:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ToolError(f"calculator: literal {value!r} is not allowed (numbers and strings only)")
        return _checked(value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_number(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _number(node.left), _number(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("calculator: division by zero") from None
        except OverflowError:
            raise ToolError("calculator: result too large") from None
    if isinstance(node, ast.Call):
        return _count(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("calculator: '^' is not a power here; write ** for powers")
    what = type(node.op if isinstance(node, ast.BinOp | ast.UnaryOp) else node).__name__
    raise ToolError(f"calculator: {what} is not allowed (arithmetic and 'text'.count('c') only)")


def _number(node: ast.AST) -> Number:
    value = _evaluate(node)
    if isinstance(value, str):
        raise ToolError(f"calculator: string {value[:40]!r} used as a number")
    return value


def _count(node: ast.Call) -> int:
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and func.attr == "count"
        and isinstance(func.value, ast.Constant)
        and isinstance(func.value.value, str)
    ):
        raise ToolError("calculator: the only call allowed is 'text'.count('c') on a string literal")
    if node.keywords or len(node.args) != 1:
        raise ToolError("calculator: .count takes exactly one string argument")
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        raise ToolError("calculator: .count takes a string literal argument")
    return func.value.value.count(arg.value)


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"calculator: exponent {exponent} too large (limit {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise ToolError(f"calculator: {base}**{exponent} would exceed {MAX_INT_BITS} bits")


def _checked(value: Any) -> Number | str:
    if isinstance(value, complex):
        raise ToolError("calculator: complex result (negative number to a fractional power)")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"calculator: integer result wider than {MAX_INT_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("calculator: result is not a finite number")
    return value
