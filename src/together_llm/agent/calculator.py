"""Safe arithmetic for the agent's `calculator` tool.

The expression is parsed with `ast` and evaluated by walking the tree ourselves: numbers,
+ - * / // % **, unary signs, parentheses, and a short list of math functions and
constants. Everything else (names, attributes, subscripts, other calls, `__import__`)
is refused with a message saying what was found. Nothing is ever passed to eval or exec.
Sizes are bounded before computing, so `9**9**9` is refused instead of freezing the agent.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from .tools import ToolError

MAX_LENGTH = 500  # characters of expression
MAX_DEPTH = 50  # nesting of the tree
MAX_BITS = 4096  # largest integer result, in bits (about 1,200 decimal digits)

_BINARY: dict[type[ast.operator], Callable[[int | float, int | float], int | float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[int | float], int | float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
FUNCTIONS: dict[str, Callable[..., int | float]] = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
    "abs": abs,
    "round": round,
}
CONSTANTS = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. "12345 * 678" or "sqrt(2) / 3"."""
    value = evaluate(expression)
    # 15 significant digits: 0.1 + 0.2 reads 0.3, as a person expects from a calculator
    return format(value, ".15g") if isinstance(value, float) else str(value)


def evaluate(expression: str) -> int | float:
    """The value of `expression`; ToolError for anything that is not plain arithmetic."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("calculator: give an arithmetic expression such as 12 * (3 + 4)")
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"calculator: the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"calculator: {expression!r} is not an arithmetic expression") from None
    return _walk(tree.body, 0)


def _walk(node: ast.AST, depth: int):
    if depth > MAX_DEPTH:
        raise ToolError("calculator: the expression is nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"calculator: only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        return _binary(node.op, left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolError(
            f"calculator: unknown name {node.id!r}; only numbers, + - * / // % **, "
            f"parentheses, {', '.join(CONSTANTS)} and {', '.join(FUNCTIONS)}() are allowed"
        )
    if isinstance(node, ast.Call):
        return _call(node, depth)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("calculator: ^ is not a power here; write 2 ** 10")
    raise ToolError(
        f"calculator: {type(node).__name__.lower()} is not allowed; only numbers, "
        "+ - * / // % **, parentheses and a few math functions"
    )


def _call(node: ast.Call, depth: int):
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        shown = ast.unparse(node.func)
        raise ToolError(
            f"calculator: calling {shown!r} is not allowed; functions: {', '.join(FUNCTIONS)}"
        )
    if node.keywords:
        raise ToolError("calculator: functions take plain numbers, not keyword arguments")
    args = [_walk(arg, depth + 1) for arg in node.args]
    if any(abs(a) > 1e300 for a in args):
        raise ToolError("calculator: a function argument is too large")
    try:
        return FUNCTIONS[node.func.id](*args)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ToolError(f"calculator: {node.func.id}(): {exc}") from None


def _binary(op: ast.operator, left, right):
    if isinstance(op, ast.Pow):
        _check_power(left, right)
    if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
        raise ToolError("calculator: division by zero")
    try:
        value = _BINARY[type(op)](left, right)
    except OverflowError:
        raise ToolError("calculator: the result is too large") from None
    if isinstance(value, complex):
        raise ToolError("calculator: the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ToolError(f"calculator: the result has more than {MAX_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("calculator: the result is too large")
    return value


def _check_power(base, exponent) -> None:
    """Refuse powers whose result would be huge before computing them."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log2(abs(base)) > MAX_BITS:
            raise ToolError(
                f"calculator: {base} ** {exponent} is too large (more than {MAX_BITS} bits)"
            )
    elif abs(exponent) > 10_000 and abs(base) != 1:
        raise ToolError("calculator: the exponent is too large")
