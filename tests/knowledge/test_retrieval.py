"""Retrieval quality on the project's own corpus, and queries that would break FTS5 syntax."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from together_llm.cli.knowledge import knowledge
from together_llm.knowledge.index import KnowledgeIndex, match_expression
from together_llm.knowledge.ingest import ingest
from together_llm.knowledge.search import reciprocal_rank_fusion, search

from .corpus import DOCUMENTS, QUESTIONS, write_corpus


@pytest.fixture
def corpus_index(home, tmp_path):
    with KnowledgeIndex.open(home) as index:
        report = ingest(index, [write_corpus(tmp_path / "corpus")])
        assert not report.problems and len(report.added) == len(DOCUMENTS)
        yield index


def test_recall_at_5_on_the_corpus(corpus_index):
    found = []
    for question, name, _ in QUESTIONS:
        sources = [Path(hit.source).name for hit in search(corpus_index, question, limit=5)]
        found.append(name in sources)
    recall = sum(found) / len(found)
    print(
        f"\nrecall@5 (BM25, {len(QUESTIONS)} questions, {len(DOCUMENTS)} documents): {recall:.3f}"
    )
    missed = [q for (q, _, _), ok in zip(QUESTIONS, found) if not ok]
    assert recall >= 0.9, f"recall@5 {recall:.3f}; missed: {missed}"


def test_each_fact_sits_in_exactly_one_document():
    for _, name, fact in QUESTIONS:
        holders = [n for n, text in DOCUMENTS.items() if fact in text]
        assert holders == [name], (fact, holders)


def test_hits_carry_scores_and_metadata(corpus_index):
    hits = search(corpus_index, "Who edits the newsletter?", limit=3)
    assert Path(hits[0].source).name == "newsletter.md"
    assert hits[0].title == "Newsletter" and hits[0].document_title == "Newsletter"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    text = DOCUMENTS["newsletter.md"]
    assert text[hits[0].char_start : hits[0].char_end] == hits[0].text


@pytest.mark.parametrize(
    "query",
    [
        'honey "Meadowgold',
        "honey AND OR NOT",
        "NEAR(honey",
        "honey*",
        "-honey",
        "text:honey",
        "honey)",
        "^honey",
        '""',
        "'; DROP TABLE chunks; --",
        "{honey}",
        "honey + sold",
    ],
)
def test_fts5_syntax_in_a_query_is_plain_text(corpus_index, query):
    hits = search(corpus_index, query, limit=5)
    if "honey" in query:
        assert Path(hits[0].source).name == "beekeeping.txt"
    assert len(corpus_index.documents()) == len(DOCUMENTS)  # nothing was dropped


def test_a_query_without_words_finds_nothing(corpus_index):
    assert match_expression("?!* ()") is None
    assert search(corpus_index, "?!* ()") == []


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = [item for item, _ in reciprocal_rank_fusion([[1, 2, 3], [4, 2, 5]])]
    assert fused[0] == 2  # second in both beats first in one
    assert set(fused[1:3]) == {1, 4} and set(fused[3:]) == {3, 5}


def test_search_command_prints_ranked_sources(corpus_index, home):
    shown = CliRunner().invoke(
        knowledge,
        ["search", "Little Sprouts children in Velmora", "--limit", "2", "--home", str(home.path)],
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("[1] ") and "children.md" in shown.output.splitlines()[0]
    assert "Wednesday" in shown.output and "[2] " in shown.output
    as_json = CliRunner().invoke(
        knowledge, ["search", "soup price", "--json", "--home", str(home.path)]
    )
    rows = json.loads(as_json.output)
    assert Path(rows[0]["source"]).name == "canteen.md" and rows[0]["score"] > 0


def test_add_and_search_import_nothing_heavy(home, tmp_path):
    """Indexing and BM25 search need no model: torch and numpy stay unloaded."""
    folder = write_corpus(tmp_path / "light")
    probe = (
        "import sys\n"
        "from together_llm.cli.knowledge import knowledge\n"
        f"knowledge.main(['add', {str(folder)!r}, '--home', {str(home.path)!r}], standalone_mode=False)\n"
        f"knowledge.main(['search', 'honey', '--home', {str(home.path)!r}], standalone_mode=False)\n"
        "print('HEAVY:', [m for m in ('torch', 'transformers', 'numpy', 'pypdf') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Meadowgold" in done.stdout and "HEAVY: []" in done.stdout
