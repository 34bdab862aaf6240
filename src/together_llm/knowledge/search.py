"""Ranking chunks for a query.

`search` is BM25 over the FTS5 index: no model needed, the default. `hybrid_search` adds
dense vectors: it embeds the query with any object that has `embed(texts) -> list of
unit vectors` (the engines do: a transformers encoder with mean pooling, or llama.cpp),
ranks chunks by cosine similarity, and fuses that ranking with BM25's by reciprocal-rank
fusion, which needs no score calibration between the two. `embed_missing` fills the
`vectors` table for chunks that have none under that model's name.
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass

from ..errors import TllmError
from .index import KnowledgeIndex

RRF_K = 60  # the constant from Cormack et al. (2009); damps the head of each ranking
CANDIDATES = 50  # how deep each ranking goes before fusion


@dataclass
class Hit:
    chunk_id: int
    score: float
    text: str
    title: str
    page: int | None
    char_start: int
    char_end: int
    document_id: int
    source: str
    document_title: str

    def to_dict(self) -> dict:
        return asdict(self)


def search(index: KnowledgeIndex, query: str, limit: int = 5) -> list[Hit]:
    """The `limit` best chunks by BM25, best first (score = -bm25(), higher is better)."""
    return _hits(index, index.bm25(query, limit))


def _hits(index: KnowledgeIndex, ranked: list[tuple[int, float]]) -> list[Hit]:
    rows = index.chunk_rows([chunk_id for chunk_id, _ in ranked])
    return [Hit(chunk_id, score, *rows[chunk_id]) for chunk_id, score in ranked if chunk_id in rows]


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse rankings of ids (best first) into one: score(id) = sum of 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


# --- dense vectors ---------------------------------------------------------------------


def _pack(vector) -> bytes:
    return array("f", vector).tobytes()


def embed_missing(
    index: KnowledgeIndex, embedder, model: str, batch: int = 32, progress=None
) -> int:
    """Embed every chunk without a vector under `model`; returns how many were embedded."""
    todo = index.chunks_without_vectors(model)
    for start in range(0, len(todo), batch):
        part = todo[start : start + batch]
        vectors = embedder.embed([text for _, text in part])
        index.put_vectors(model, [(chunk_id, _pack(v)) for (chunk_id, _), v in zip(part, vectors)])
        if progress:
            progress(start + len(part), None)
    return len(todo)


def dense(
    index: KnowledgeIndex, embedder, model: str, query: str, limit: int
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) best first, by brute force over the stored vectors
    (exact, and fast enough in numpy for a personal corpus of some 100,000 chunks)."""
    import numpy as np

    stored = index.vectors(model)
    if not stored or limit < 1:
        return []
    ids = np.array([chunk_id for chunk_id, _ in stored])
    matrix = np.frombuffer(b"".join(blob for _, blob in stored), dtype=np.float32).reshape(
        len(stored), -1
    )
    query_vector = np.asarray(embedder.embed([query])[0], dtype=np.float32)
    if query_vector.shape[0] != matrix.shape[1]:
        raise TllmError(
            f"the stored vectors for {model!r} have {matrix.shape[1]} dimensions, "
            f"the query's {query_vector.shape[0]}: embed the index again with one model"
        )
    similarity = matrix @ query_vector
    best = np.argsort(-similarity)[:limit]
    return [(int(ids[i]), float(similarity[i])) for i in best]


def dense_search(
    index: KnowledgeIndex, query: str, embedder, model: str, limit: int = 5
) -> list[Hit]:
    """The `limit` chunks nearest the query's vector; each hit's score is its cosine."""
    return _hits(index, dense(index, embedder, model, query, limit))


def hybrid_search(
    index: KnowledgeIndex, query: str, embedder, model: str, limit: int = 5
) -> list[Hit]:
    """BM25 and dense rankings fused by RRF; each hit's score is its fused score."""
    lexical = [chunk_id for chunk_id, _ in index.bm25(query, CANDIDATES)]
    semantic = [chunk_id for chunk_id, _ in dense(index, embedder, model, query, CANDIDATES)]
    return _hits(index, reciprocal_rank_fusion([lexical, semantic])[:limit])
