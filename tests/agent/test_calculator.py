"""The calculator tool: exact arithmetic by an AST walk, and a clear refusal for anything else."""

import pytest

from together_llm.agent.calculator import calculate
from together_llm.agent.tools import ToolError


@pytest.mark.parametrize(
    "expression, value",
    [
        ("12345 * 678", "8369910"),
        ("(2 + 3) ** 2", "25"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("1 / 4", "0.25"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + abs(-2)", "6"),
        ("2 ** -1", "0.5"),
    ],
)
def test_arithmetic(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("__import__('os')", "__import__"),
        ("__import__('os').system('echo hacked')", "not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("(1).real", "attribute"),
        ("open('/etc/passwd')", "open"),
        ("[1, 2]", "list"),
        ("'a' * 3", "only numbers"),
        ("lambda: 1", "lambda"),
        ("9 ** 9 ** 9", "too large"),
        ("1 / 0", "division by zero"),
        ("2 ^ 3", "write 2 ** 10"),
        ("12345 *", "not an arithmetic expression"),
        ("", "give an arithmetic expression"),
    ],
)
def test_refuses_what_is_not_arithmetic(expression, reason):
    with pytest.raises(ToolError, match=None) as error:
        calculate(expression)
    assert reason in str(error.value)
