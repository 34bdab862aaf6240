"""The retriever behind `--knowledge` (ask, chat, serve) and `tllm knowledge search`.

It keeps one connection to the home's index and, in hybrid or dense mode, one embedder,
so a chat or a server pays their start-up once. Mode `auto` is hybrid when assistant.yaml
names a `knowledge_embed_model`, else BM25. Safe to share between threads: one lock
serialises the SQLite connection and the embedder.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import TllmError
from ..models.registry import get_model
from .embed import HFEmbedder
from .index import KnowledgeIndex
from .search import Hit, dense_search, hybrid_search, search

MODES = ("auto", "bm25", "dense", "hybrid")


def embedder_for(home, name: str):
    """An HFEmbedder for `name`: a directory (an encoder, or a sentence-transformers
    folder), else a model of the registry that has a transformers directory."""

    path = Path(name).expanduser()
    if path.is_dir():
        return HFEmbedder(path)

    entry = get_model(home, name)
    if entry.hf_dir is None:
        raise TllmError(
            f"embedding model {name!r} has no transformers directory; name an "
            "encoder directory or a model from `tllm models list` added from one"
        )
    return HFEmbedder(entry.hf_dir)


class Retriever:
    """`Retriever(home, mode, embed_model).hits(query, limit)` -> chunks, best first."""

    def __init__(self, home, mode: str = "auto", embed_model: str | None = None):
        if mode not in MODES:
            raise TllmError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == "auto":
            mode = "hybrid" if embed_model else "bm25"
        if mode in ("dense", "hybrid") and not embed_model:
            raise TllmError(
                f"{mode} search needs an embedding model: pass --embed-model DIR|NAME "
                "or `tllm config set knowledge_embed_model DIR|NAME`"
            )
        self.mode, self.embed_model = mode, embed_model
        self.index = KnowledgeIndex.open(home, threads=True)
        # dense and hybrid modes always have embed_model here (checked above)
        self.embedder = embedder_for(home, embed_model) if embed_model and mode != "bm25" else None
        self._lock = threading.Lock()

    def hits(self, query: str, limit: int) -> list[Hit]:
        with self._lock:
            if self.mode == "bm25":
                return search(self.index, query, limit)
            assert self.embedder is not None  # dense and hybrid modes have one (__init__)
            name = self.embedder.name
            if self.index.chunk_count() and not self.index.vector_count(name):
                raise TllmError(
                    f"no vectors under {name!r} yet: run `tllm knowledge add PATH... "
                    f"--embed-model {self.embed_model}` first"
                )
            found = hybrid_search if self.mode == "hybrid" else dense_search
            return found(self.index, query, self.embedder, name, limit)

    def close(self) -> None:
        self.index.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
