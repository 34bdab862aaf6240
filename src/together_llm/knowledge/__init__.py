"""Knowledge: the user's documents, read, chunked by their structure, indexed in SQLite
(FTS5 with BM25) under `home/knowledge/index.sqlite`, and searched.

documents.py turns a file into a `Document` (plain text plus titled sections), chunking.py
cuts sections into bounded, overlapping chunks, index.py stores documents and chunks, and
search.py ranks chunks for a query (BM25, dense, hybrid), retrieve.py keeps an index and
an embedder open for the `--knowledge` switch, and prompt.py puts retrieved chunks into a
prompt as fenced, numbered sources and finds the ones an answer cites. Nothing here imports
torch unless an embedding model is used.
"""
