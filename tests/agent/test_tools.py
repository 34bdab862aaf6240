"""Tools from typed Python functions: schemas, argument checks, and the home's tools.py."""

import pytest

from together_llm.agent.builtin_tools import default_tools
from together_llm.agent.tools import ToolError, tool_from_function
from together_llm.errors import TllmError

USER_TOOLS = '''
from math import sqrt  # imported, not defined here: not a tool

def add_days(date: str, days: int) -> str:
    """Add a number of days to an ISO date.

    Args:
        date: the start, YYYY-MM-DD.
        days: how many days to add.
    """
    import datetime
    return (datetime.date.fromisoformat(date) + datetime.timedelta(days=days)).isoformat()

def _helper(x):
    return x
'''


def test_schema_comes_from_the_signature():
    def convert(amount: float, currency: str, round_to: int = 2, exact: bool = False) -> str:
        """Convert money."""

    tool = tool_from_function(convert)
    assert tool.description == "Convert money."
    assert tool.parameters["properties"] == {
        "amount": {"type": "number"},
        "currency": {"type": "string"},
        "round_to": {"type": "integer"},
        "exact": {"type": "boolean"},
    }
    assert tool.parameters["required"] == ["amount", "currency"]


def test_a_function_without_type_hints_is_refused():
    def untyped(city):
        """The weather."""

    with pytest.raises(TllmError, match="parameter 'city' has no type hint"):
        tool_from_function(untyped)


def test_home_tools_py_function_is_called_with_typed_arguments(home):
    (home.path / "tools.py").write_text(USER_TOOLS)
    tools = default_tools(home)
    assert tools.names() == ["calculator", "now", "knowledge_search", "add_days"]
    add_days = tools.get("add_days")
    assert add_days.parameters["properties"]["days"] == {
        "type": "integer",
        "description": "how many days to add.",
    }
    assert add_days.call({"date": "2024-02-27", "days": 3}) == "2024-03-01"
    with pytest.raises(ToolError, match="'days' must be an integer"):
        add_days.call({"date": "2024-02-27", "days": "3"})
    with pytest.raises(ToolError, match="needs the argument"):
        add_days.call({"date": "2024-02-27"})


def test_home_tools_py_with_an_untyped_function_names_it(home):
    (home.path / "tools.py").write_text(
        'def shout(text):\n    """Upper case."""\n    return text.upper()\n'
    )
    with pytest.raises(TllmError, match=r"tools.py: tool shout: parameter 'text' has no type hint"):
        default_tools(home)


def test_knowledge_search_on_an_empty_home_says_how_to_fill_it(home):
    result = default_tools(home).get("knowledge_search").call({"query": "lantern festival"})
    assert "tllm knowledge add" in result
