"""The web studio's Knowledge tab: what `tllm knowledge add | list | remove | search` do, in
the browser.

An uploaded document is copied into the home's `knowledge/uploads/` under a name the server
chooses (the upload's own name reduced to safe characters), so that the index's `source`
stays readable after Gradio's temporary copy is gone; a document uploaded again under the
same name replaces the earlier one, as `tllm knowledge add` re-reads a changed file. Each
file is bounded by the index's own size limit (knowledge/documents.py) and by the app's
upload limit (web.py). The chat's "Answer from my documents" then searches what is here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..errors import TllmError
from ..home import Home
from ..knowledge.documents import SUFFIXES, kind_of
from ..knowledge.index import KnowledgeIndex
from ..knowledge.ingest import IngestReport, Problem, ingest_files
from ..knowledge.retrieve import Retriever

DOCUMENT_COLUMNS = ["id", "title", "kind", "chunks", "kB", "file"]
SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir(home: Home) -> Path:
    return home.knowledge_dir / "uploads"


def keep_upload(home: Home, uploaded: Path) -> Path:
    """The upload's copy under the home; a file of the same name is replaced (the index
    then re-reads it: "updated", or "unchanged" when the content is the same)."""
    folder = uploads_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    stem = SAFE.sub("_", uploaded.stem).strip("._")[:80] or "document"
    target = folder / f"{stem}{uploaded.suffix.lower()}"  # a suffix kind_of knows
    shutil.copyfile(uploaded, target)
    return target


def outcome(report: IngestReport) -> str:
    """The add's result, as `tllm knowledge add` prints it, with each problem named."""
    lines = [
        f"**{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged** ({report.chunks} chunks written)"
    ]
    lines += [f"- not indexed: {Path(p.path).name}: {p.reason}" for p in report.problems]
    return "\n".join(lines)


def knowledge_tab(app: FastAPI) -> None:
    home = app.state.home

    def document_rows() -> list[list]:
        with KnowledgeIndex.open(home) as index:
            documents = index.documents()
        return [
            [d.id, d.title, d.kind, d.chunks, round(d.bytes / 1e3, 1), Path(d.source).name]
            for d in documents
        ]

    def add(files):
        if not files:
            raise gr.Error("Choose one or more documents to add.")
        report = IngestReport()
        kept = []
        for file in files:
            uploaded = Path(file)
            if kind_of(uploaded) is None:  # refused before it is copied
                suffix = uploaded.suffix or "(none)"
                report.problems.append(Problem(str(uploaded), f"unsupported file type {suffix}"))
                continue
            kept.append(keep_upload(home, uploaded))
        with KnowledgeIndex.open(home) as index:
            ingest_files(index, kept, report)
        for problem in report.problems:  # a copy the index could not read is not kept
            if Path(problem.path) in kept and str(Path(problem.path)) not in _sources():
                Path(problem.path).unlink(missing_ok=True)
        return outcome(report), document_rows()

    def _sources() -> set[str]:
        with KnowledgeIndex.open(home) as index:
            return {d.source for d in index.documents()}

    def remove(document_id):
        if document_id is None:
            raise gr.Error("Give the id of the document to remove.")
        try:
            with KnowledgeIndex.open(home) as index:
                removed = index.remove(int(document_id))
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        if Path(removed.source).parent == uploads_dir(home):  # the copy this tab made
            Path(removed.source).unlink(missing_ok=True)
        gr.Info(f"Removed {removed.title} ({removed.chunks} chunks).")
        return document_rows()

    def search(query: str):
        if not query.strip():
            raise gr.Error("Type what to search for.")
        config = home.load_config()
        with Retriever(home, "auto", config.knowledge_embed_model or None) as retriever:
            hits = retriever.hits(query, 5)
        if not hits:
            return "No matching passage."
        return "\n\n".join(
            f"**[{rank}] {hit.title}** ({Path(hit.source).name}"
            f"{f', p.{hit.page}' if hit.page else ''}; score {hit.score:.3f})\n\n"
            f"> {' '.join(hit.text.split())[:400]}"
            for rank, hit in enumerate(hits, start=1)
        )

    with gr.Tab("Knowledge", id="knowledge-tab"):
        gr.Markdown(
            "Documents the assistant answers from (tick **Answer from my documents** in "
            "Chat). The same index as `tllm knowledge`."
        )
        with gr.Row():
            files = gr.File(
                label="Documents (.txt, .md, .html, .pdf, .jsonl)",
                file_count="multiple",
                file_types=list(SUFFIXES),
                elem_id="knowledge-files",
            )
            add_button = gr.Button("Add", elem_id="knowledge-add")
        added = gr.Markdown(elem_id="knowledge-result")
        documents = gr.Dataframe(
            headers=DOCUMENT_COLUMNS,
            value=document_rows,
            label="Documents",
            elem_id="documents",
        )
        with gr.Row():
            which = gr.Number(label="Document id", precision=0, elem_id="document-id")
            remove_button = gr.Button("Remove", elem_id="knowledge-remove")
        with gr.Row():
            query = gr.Textbox(label="Search", elem_id="knowledge-query", scale=4)
            search_button = gr.Button("Search", elem_id="knowledge-search")
        found = gr.Markdown(elem_id="knowledge-hits")

        add_button.click(add, files, [added, documents])
        remove_button.click(remove, which, documents)
        search_button.click(search, query, found)
        query.submit(search, query, found)
