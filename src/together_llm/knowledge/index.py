"""The knowledge index: one SQLite database at `home/knowledge/index.sqlite`.

Tables: `documents` (one row per source file, with the SHA-256 of its bytes), `chunks`
(text, title, page and character offsets), `chunks_fts` (an FTS5 index over the chunks'
text and titles, kept in step by triggers, ranked with bm25()) and `vectors` (optional
dense embeddings per chunk, for hybrid search; see search.py).

A document is replaced as a whole in one transaction: re-adding an unchanged file is a
no-op, and a changed file's old chunks are gone the moment its new ones are visible.
Every query is parameterized; the only text that reaches FTS5's MATCH syntax is built by
`match_expression`, which quotes each word.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TllmError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    title TEXT NOT NULL,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, title, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, title) VALUES (new.id, new.text, new.title);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, title) VALUES ('delete', old.id, old.text, old.title);
END;
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL
);
"""

# Words too common to tell chunks apart: dropping them keeps an OR query from touching
# every row. BM25's IDF would weigh them near zero anyway.
STOPWORDS = frozenset(
    """
a an and are as at be been but by can could did do does for from had has have how i if in
into is it its me my of on or our she he so than that the their them then there these they
this those to was we were what when where which who whom whose why will with would you your
about tell know please
""".split()
)

# bm25() column weights: text, title. A title names the topic of every chunk under it.
BM25_WEIGHTS = (1.0, 2.0)


def query_words(query: str) -> list[str]:
    """A free-form query's distinct words, lower-cased, stop words out (all kept when
    nothing else is left)."""
    words = re.findall(r"\w+", query.lower())
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))


def match_expression(query: str | list[str]) -> str | None:
    """The FTS5 MATCH text for a free-form query (or its `query_words`): each word
    double-quoted (so quotes, parentheses, `*`, `:`, `-`, AND/OR/NOT/NEAR in the user's text
    are plain words), joined by OR and ranked by BM25. None when there is no word."""
    words = query_words(query) if isinstance(query, str) else query
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


@dataclass
class StoredDocument:
    id: int
    source: str
    kind: str
    title: str
    sha256: str
    bytes: int
    chunks: int
    added_at: float


def index_path(home) -> Path:
    return home.knowledge_dir / "index.sqlite"


class KnowledgeIndex:
    """`with KnowledgeIndex.open(home) as index: ...`"""

    def __init__(self, path: Path, threads: bool = False):
        """`threads=True` lets other threads use the connection (the caller serialises
        them, as retrieve.Retriever does with a lock)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: writes go through `_write`, which takes the write lock first.
            self.db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=not threads
            )
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash can lose
            # the last documents added (re-adding them redoes them) but never corrupts the
            # index, and adding a folder no longer waits for the disk once per file.
            self.db.execute("PRAGMA synchronous = NORMAL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise TllmError(
                    f"{path} was written by a newer together-llm (schema {version}); upgrade"
                )
            self.db.executescript(
                f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            )
        except sqlite3.DatabaseError as exc:
            raise TllmError(f"cannot open the knowledge index {path}: {exc}") from None

    @classmethod
    def open(cls, home, threads: bool = False) -> KnowledgeIndex:
        return cls(index_path(home), threads)

    @contextlib.contextmanager
    def _write(self):
        """One write transaction that holds SQLite's write lock from its first statement, so
        a check-then-write (is this source indexed?) cannot race another process."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- documents ---------------------------------------------------------------------

    def find(self, source: str) -> StoredDocument | None:
        row = self.db.execute("SELECT * FROM documents WHERE source = ?", (source,)).fetchone()
        return StoredDocument(*row) if row else None

    def get(self, document_id: int) -> StoredDocument | None:
        row = self.db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
        return StoredDocument(*row) if row else None

    def documents(self) -> list[StoredDocument]:
        return [
            StoredDocument(*row) for row in self.db.execute("SELECT * FROM documents ORDER BY id")
        ]

    def is_current(self, source: str, sha256: str) -> bool:
        """True when `source` is indexed with exactly these bytes (nothing to do)."""
        found = self.find(source)
        return found is not None and found.sha256 == sha256

    def put(
        self, source: str, kind: str, title: str, sha256: str, size: int, chunks
    ) -> tuple[int, str]:
        """Index `source` with `chunks` (chunking.Chunk), replacing what it had, atomically.
        Returns (document id, "added" | "updated" | "unchanged"). A document keeps its id
        across updates, so ids users saw in `list` stay valid."""
        chunks = list(chunks)
        with self._write():  # one transaction: old chunks vanish exactly when new ones appear
            found = self.find(source)
            if found and found.sha256 == sha256:
                return found.id, "unchanged"
            if found:
                self.db.execute("DELETE FROM chunks WHERE document_id = ?", (found.id,))
                self.db.execute(
                    "UPDATE documents SET kind = ?, title = ?, sha256 = ?, bytes = ?, "
                    "chunks = ?, added_at = ? WHERE id = ?",
                    (kind, title, sha256, size, len(chunks), time.time(), found.id),
                )
                document_id, outcome = found.id, "updated"
            else:
                cursor = self.db.execute(
                    "INSERT INTO documents (source, kind, title, sha256, bytes, chunks, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (source, kind, title, sha256, size, len(chunks), time.time()),
                )
                assert cursor.lastrowid is not None  # an INSERT always sets it
                document_id, outcome = cursor.lastrowid, "added"
            self.db.executemany(
                "INSERT INTO chunks (document_id, ordinal, title, page, char_start, char_end, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (document_id, n, c.title, c.page, c.start, c.end, c.text)
                    for n, c in enumerate(chunks)
                ],
            )
        return document_id, outcome

    def remove(self, document_id: int) -> StoredDocument:
        with self._write():
            found = self.get(document_id)
            if found is None:
                raise TllmError(f"no document with id {document_id}; see `tllm knowledge list`")
            self.db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            self.db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return found

    # --- chunks ------------------------------------------------------------------------

    def chunk_count(self, document_id: int | None = None) -> int:
        if document_id is None:
            return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return self.db.execute(
            "SELECT COUNT(*) FROM chunks WHERE document_id = ?", (document_id,)
        ).fetchone()[0]

    def chunk_texts(self, document_id: int) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT text FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,)
            )
        ]

    def bm25(self, query: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, score) best first; the score is -bm25(), so higher is better."""
        words = query_words(query)
        if not words or limit < 1:
            return []
        expression = match_expression(self._informative(words))
        rows = self.db.execute(
            "SELECT rowid, bm25(chunks_fts, ?, ?) AS rank FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY rank LIMIT ?",
            (*BM25_WEIGHTS, expression, limit),
        )
        return [(rowid, -rank) for rowid, rank in rows]

    def _informative(self, words: list[str]) -> list[str]:
        """`words` less those in half the chunks or more, unless none would be left.

        FTS5's bm25() gives such a word an IDF of 1e-6 (log((N - n + 0.5) / (n + 0.5)) is
        not positive for n >= N/2), so it cannot change a ranking, yet an OR query scores
        every row it matches: at 10,000 documents one word found in all of them made a
        query 15 ms instead of 1 (bench/knowledge.py). Counting a word's rows stops at
        N/2 and scores nothing, so the check costs a fraction of that."""
        if len(words) < 2:
            return words
        total = self.db.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0]
        half = (total + 1) // 2
        kept = [
            w
            for w in words
            if self.db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                (match_expression([w]), half),
            ).fetchone()[0]
            < half
        ]
        return kept or words

    def chunk_rows(self, chunk_ids: list[int]) -> dict[int, tuple]:
        """chunk id -> (text, title, page, char_start, char_end, document id, source, document title)."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.db.execute(
            "SELECT c.id, c.text, c.title, c.page, c.char_start, c.char_end, d.id, d.source, d.title "
            f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            chunk_ids,
        )
        return {row[0]: row[1:] for row in rows}

    # --- dense vectors (optional; see search.py) ---------------------------------------

    def chunks_without_vectors(self, model: str) -> list[tuple[int, str]]:
        return list(
            self.db.execute(
                "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id AND v.model = ? "
                "WHERE v.chunk_id IS NULL ORDER BY c.id",
                (model,),
            )
        )

    def put_vectors(self, model: str, rows: list[tuple[int, bytes]]) -> None:
        with self._write():
            self.db.executemany(
                "INSERT OR REPLACE INTO vectors (chunk_id, model, vector) VALUES (?, ?, ?)",
                [(chunk_id, model, blob) for chunk_id, blob in rows],
            )

    def vector_count(self, model: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (model,)).fetchone()[
            0
        ]

    def vectors(self, model: str) -> list[tuple[int, bytes]]:
        return list(
            self.db.execute("SELECT chunk_id, vector FROM vectors WHERE model = ?", (model,))
        )
