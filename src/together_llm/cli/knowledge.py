"""`tllm knowledge`: the documents the assistant can search (add, list, search, remove),
and the `--knowledge` switch of ask and chat (the assistant grounds its answers:
assistant/grounding.py)."""

from __future__ import annotations

import json
import os

import click

from ..errors import TllmError
from ..knowledge.index import KnowledgeIndex
from ..knowledge.ingest import IngestReport, collect, ingest_files, total_bytes
from ..knowledge.retrieve import Retriever, embedder_for
from ..knowledge.search import embed_missing
from .common import home_options, open_home
from .data.progress import progress


@click.group()
def knowledge():
    """Knowledge: your documents, indexed in the home for search (BM25, SQLite FTS5).

    \b
    Examples:
      tllm knowledge add ~/notes paper.pdf      # .txt .md .html .pdf .jsonl, folders too
      tllm knowledge list
      tllm knowledge search "when is the board meeting?" --limit 3
      tllm knowledge add ~/notes --embed-model ~/models/bge-small   # dense vectors too
      tllm knowledge search "board meeting" --mode hybrid --embed-model ~/models/bge-small
      tllm knowledge remove 4
      tllm ask --knowledge "when is the board meeting?"   # answers citing [1], [2]
    """


@knowledge.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--max-words", type=click.IntRange(20, 2000), help="Longest chunk in words (default 180)."
)
@click.option(
    "--overlap", type=click.IntRange(0, 500), help="Words repeated between chunks (default 30)."
)
@click.option(
    "--embed-model",
    help="Also store dense vectors from this encoder (a directory or "
    "a model name; default: assistant.yaml's knowledge_embed_model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@home_options
def add(paths, max_words, overlap, embed_model, as_json, home_dir):
    """Index the files and folders PATHS. Unchanged files are skipped, changed ones
    re-indexed; files that cannot be read are named and the rest still indexed. With an
    embedding model, chunks without a vector under it are embedded too."""

    if max_words is not None and overlap is not None and overlap >= max_words:
        raise TllmError(f"--overlap ({overlap}) must be smaller than --max-words ({max_words})")
    home = open_home(home_dir)
    report = IngestReport()
    files = collect(paths, report)
    with (
        KnowledgeIndex.open(home) as index,
        progress("indexing", total_bytes(files), unit="bytes", at_least=4 << 20) as update,
    ):
        ingest_files(index, files, report, update, max_words, overlap)
        embedded = _embed(home, index, embed_model or home.load_config().knowledge_embed_model)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "added": report.added,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "skipped": report.skipped,
                    "chunks": report.chunks,
                    "embedded": embedded,
                    "problems": [{"path": p.path, "reason": p.reason} for p in report.problems],
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"{len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged ({report.chunks} chunks written"
            f"{f', {embedded} embedded' if embedded else ''})"
        )
        if report.skipped:
            shown = ", ".join(os.path.basename(p) for p in report.skipped[:5])
            more = f" and {len(report.skipped) - 5} more" if len(report.skipped) > 5 else ""
            click.echo(f"skipped {len(report.skipped)} file(s) of other types: {shown}{more}")
        for problem in report.problems:
            click.echo(f"not indexed: {problem.path}: {problem.reason}", err=True)
    if report.problems:
        raise TllmError(f"{len(report.problems)} path(s) could not be indexed (named above)")


def _embed(home, index, model: str | None) -> int:
    """Embed the chunks that have no vector under `model` yet; 0 without a model."""
    if not model:
        return 0

    embedder = embedder_for(home, model)
    todo = len(index.chunks_without_vectors(embedder.name))
    with progress("embedding", todo, unit="rows", at_least=64) as update:
        return embed_missing(index, embedder, embedder.name, progress=update)


@knowledge.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the indexed documents with their ids."""

    with KnowledgeIndex.open(open_home(home_dir)) as index:
        documents = index.documents()
    if as_json:
        click.echo(json.dumps([vars(d) for d in documents], indent=2))
        return
    if not documents:
        click.echo("no documents yet: add some with `tllm knowledge add PATH...`")
        return
    for d in documents:
        click.echo(
            f"{d.id:>5}  {d.kind:<5} {d.chunks:>5} chunks  {d.bytes / 1e3:>9.1f} kB  {d.title}  ({d.source})"
        )


@knowledge.command()
@click.argument("query")
@click.option(
    "--limit",
    "-k",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="How many chunks to show.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "bm25", "dense", "hybrid"]),
    default="auto",
    show_default=True,
    help="bm25 (no model), dense (vectors), hybrid (both, fused by "
    "reciprocal rank); auto is hybrid when an embedding model is configured.",
)
@click.option(
    "--embed-model",
    help="Encoder for dense and hybrid (default: assistant.yaml's knowledge_embed_model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def search(query, limit, mode, embed_model, as_json, home_dir):
    """Show the chunks that best match QUERY, best first, with scores and sources. Scores
    are -bm25 (bm25), cosine similarity (dense) or the fused reciprocal-rank score (hybrid)."""

    home = open_home(home_dir)
    with Retriever(
        home, mode, embed_model or home.load_config().knowledge_embed_model or None
    ) as retriever:
        hits = retriever.hits(query, limit)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    if not hits:
        click.echo("no matching chunks")
        return
    for rank, hit in enumerate(hits, start=1):
        page = f" p.{hit.page}" if hit.page else ""
        click.echo(
            f"[{rank}] {hit.score:.3f}  {hit.title}  ({hit.source}{page}, "
            f"chars {hit.char_start}-{hit.char_end}, document {hit.document_id})"
        )
        text = " ".join(hit.text.split())
        click.echo(f"    {text[:300]}{'...' if len(text) > 300 else ''}")


@knowledge.command()
@click.argument("document_id", type=int)
@home_options
def remove(document_id, home_dir):
    """Remove document DOCUMENT_ID (from `tllm knowledge list`) and its chunks."""

    with KnowledgeIndex.open(open_home(home_dir)) as index:
        removed = index.remove(document_id)
    click.echo(f"removed {removed.id}: {removed.source} ({removed.chunks} chunks)")


# --- `--knowledge` on ask and chat ------------------------------------------------------


def knowledge_option(func):
    return click.option(
        "--knowledge/--no-knowledge",
        "use_knowledge",
        default=None,
        help="Answer from your documents (tllm knowledge add) and list the cited "
        "sources (default: assistant.yaml's `knowledge`).",
    )(func)
