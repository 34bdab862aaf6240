"""The tools every agent has: calculator, knowledge_search and now, plus the user's own
functions from the home's `tools.py` (see user_tools.py)."""

from __future__ import annotations

from datetime import datetime

from ..knowledge.index import KnowledgeIndex, index_path
from ..knowledge.search import search
from .calculator import calculate
from .tools import Tool, ToolRegistry, tool_from_function
from .user_tools import load_user_tools


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly, e.g. 12345 * 678 or (2 + 3) ** 2.

    Args:
        expression: numbers with + - * / // % ** and parentheses; sqrt, log, sin, cos, pi.
    """
    return calculate(expression)


def now() -> str:
    """The current local date and time, with the weekday and time zone."""
    moment = datetime.now().astimezone()
    return moment.strftime("%A %Y-%m-%d %H:%M:%S %Z (UTC%z)")


def knowledge_tool(home) -> Tool:
    """`knowledge_search` over the home's knowledge index (BM25), numbered with sources."""

    def knowledge_search(query: str, limit: int = 3) -> str:
        """Search the user's own documents (notes, papers, files) for passages about a topic.

        Args:
            query: words to look for.
            limit: how many passages to return (1 to 10).
        """

        if not index_path(home).exists():
            return "the knowledge index is empty: add documents with `tllm knowledge add PATH`"
        with KnowledgeIndex.open(home) as index:
            hits = search(index, query, max(1, min(10, limit)))
        if not hits:
            return f"no passage matches {query!r}"
        return "\n".join(
            f"[{n}] {hit.document_title} ({hit.source}): {' '.join(hit.text.split())}"
            for n, hit in enumerate(hits, start=1)
        )

    return tool_from_function(knowledge_search)


def default_tools(home=None, user_tools: bool = True) -> ToolRegistry:
    """calculator, now, knowledge_search (with a home), then the home's tools.py functions."""
    registry = ToolRegistry([tool_from_function(calculator), tool_from_function(now)])
    if home is not None:
        registry.add(knowledge_tool(home))
        if user_tools:
            for tool in load_user_tools(home.tools_file):
                registry.add(tool)
    return registry
