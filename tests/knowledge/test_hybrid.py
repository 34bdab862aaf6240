"""Dense vectors beside BM25: stored per chunk, dropped with their chunk, fused by RRF.

The encoder is a tiny random BERT (tests/tiny_models.py): its vectors mean nothing, but a
text's vector is still identical to itself, so a chunk's own text must rank it first."""

from __future__ import annotations

from pathlib import Path

import pytest

from together_llm.knowledge.index import KnowledgeIndex
from together_llm.knowledge.ingest import ingest
from together_llm.knowledge.search import dense, embed_missing, hybrid_search

from ..tiny_models import make_tiny_model
from .corpus import write_corpus


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    from together_llm.knowledge.embed import HFEmbedder

    return HFEmbedder(
        make_tiny_model("bert", tmp_path_factory.mktemp("encoder") / "tiny-bert", task="embed")
    )


def test_vectors_are_stored_searched_and_dropped_with_their_chunks(home, tmp_path, embedder):
    folder = write_corpus(tmp_path / "corpus")
    with KnowledgeIndex.open(home) as index:
        ingest(index, [folder])
        chunks = index.chunk_count()
        assert embed_missing(index, embedder, embedder.name) == chunks
        assert embed_missing(index, embedder, embedder.name) == 0  # nothing left to embed

        text = (folder / "solar.md").read_text().split("\n\n", 1)[1].strip()
        best_id, similarity = dense(index, embedder, embedder.name, text, limit=3)[0]
        assert similarity == pytest.approx(1.0, abs=1e-4)
        hits = hybrid_search(index, text, embedder, embedder.name, limit=3)
        assert hits[0].chunk_id == best_id and Path(hits[0].source).name == "solar.md"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

        (folder / "solar.md").write_text("# Solar Power\n\nThe panels were replaced in 2024.\n")
        ingest(index, [folder])
        assert (
            len(index.vectors(embedder.name)) == chunks - 1
        )  # the old chunk's vector went with it
        assert [text for _, text in index.chunks_without_vectors(embedder.name)] == [
            "The panels were replaced in 2024."
        ]
