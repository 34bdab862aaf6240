"""The studio's Share tab: what `tllm export`, `tllm adapters export | import | merge` do,
in the browser.

- Export for Ollama and llama.cpp: the assistant (an adapter merged into its base, or the
  base alone) as a GGUF of the chosen quantization with its Ollama Modelfile, written by
  `tllm export` as a background job (jobs.py: it takes minutes), then offered for download.
- Exchange: an adapter written as the archive a peer imports (its sha256 shown, to be sent
  apart from it), and an uploaded archive imported with every check of `tllm adapters
  import`; a refused archive leaves the home as it was and its reason is shown.
- Merge: two or more adapters into a new one (`tllm adapters merge`).
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..adapters.exchange import export_adapter, import_adapter
from ..adapters.merge import merge_adapters
from ..adapters.store import list_adapters
from ..errors import TllmError
from ..home import Home
from .jobs import Job, Jobs
from .web_improve import job_state_html

QUANTIZATIONS = ("q8_0", "q4_k_m", "f16")
MERGE_METHODS = ("svd", "cat", "linear", "ties", "dare_ties", "dare_linear")
BASE = "(the base model alone)"
REFRESH_SECONDS = 2.0


def exports_dir(home: Home) -> Path:
    return home.path / "exports"


def export_job(jobs: Jobs) -> Job | None:
    job = jobs.latest()
    return job if job is not None and job.args[0] == "export" else None


def export_state(home: Home, jobs: Jobs) -> tuple[str, list[str] | None]:
    """(what the latest export job says, its files to download once it is done)."""
    job = export_job(jobs)
    if job is None:
        return "<p id='export-state'>No export yet.</p>", None
    state = job_state_html(jobs, job, "export-state")
    if job.state != "done":
        return state, None
    folder = exports_dir(home) / job.args[job.args.index("--name") + 1]
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "export.json")
    return state, [str(p) for p in files]


def share_tab(app: FastAPI) -> None:
    home: Home = app.state.home
    jobs: Jobs = app.state.jobs

    def adapters() -> list[str]:
        return list_adapters(home)

    def export_gguf(adapter: str, quantization: str, name: str, replace: bool):
        if not name.strip():
            raise gr.Error("Name the export (it goes to exports/NAME/).")
        args = ["export", "--gguf", quantization, "--name", name.strip()]
        if replace:  # else an export of that name is refused, and kept
            args.append("--overwrite")
        if adapter and adapter != BASE:
            args += ["--adapter", adapter]
        try:
            jobs.start(args)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return export_state(home, jobs)[0]

    def export_archive(adapter: str):
        if not adapter:
            raise gr.Error("Choose the adapter to export.")
        folder = Path(tempfile.mkdtemp(prefix="tllm-share-"))
        try:
            written = export_adapter(home, adapter, folder)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        said = (
            f"**{adapter}.tar**, {written['bytes']} bytes. Send its sha256 apart from it, "
            f"so that your peer can check it: `{written['sha256']}`"
        )
        return said, written["path"]

    def import_archive(file, name: str, sha256: str):
        if file is None:
            raise gr.Error("Choose an adapter archive (.tar) to import.")
        try:
            card = import_adapter(
                home, file, name=name.strip() or None, sha256=sha256.strip() or None
            )
        except TllmError as exc:  # a refusal: the home is as it was
            return f"**Refused:** {html.escape(str(exc))}", gr.update()
        said = (
            f"**Imported adapter {card.name}** (base {card.base}, {card.method}"
            f" {card.stage or ''}). Choose it in Chat to talk to it."
        )
        return said, gr.update(choices=adapters())

    def merge(names: list[str], method: str, name: str):
        if len(names or []) < 2:
            raise gr.Error("Tick two or more adapters to merge.")
        if not name.strip():
            raise gr.Error("Name the merged adapter.")
        try:
            card = merge_adapters(home, list(names), method, name.strip())
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return f"**Merged {', '.join(names)}** with {method} into {card.name}, rank {card.rank}."

    def refresh(shown: str | None):
        """The export's state; its files only when that changed (a GGUF is large, and
        Gradio copies what it offers)."""
        job = export_job(jobs)
        now = f"{job.id}:{job.state}" if job else None
        state, files = export_state(home, jobs)
        return state, (files if now != shown else gr.update()), now

    def lists():
        names = adapters()
        return (
            gr.update(choices=[BASE, *names]),
            gr.update(choices=names),
            gr.update(choices=names),
        )

    with gr.Tab("Share", id="share-tab") as tab:
        gr.Markdown("#### Export for Ollama and llama.cpp (`tllm export`)")
        with gr.Row():
            chosen = gr.Dropdown(
                choices=[BASE, *adapters()],
                value=BASE,
                label="Adapter merged into its base",
                elem_id="export-adapter",
            )
            quantization = gr.Dropdown(
                choices=list(QUANTIZATIONS), value="q8_0", label="Quantization"
            )
            export_name = gr.Textbox(label="Export name", elem_id="export-name")
            replace = gr.Checkbox(label="Replace an export of this name", value=False)
            export_button = gr.Button("Export GGUF", elem_id="export-gguf")
        state = gr.HTML(elem_id="export-status")
        downloads = gr.File(
            label="GGUF and Modelfile",
            file_count="multiple",
            interactive=False,
            elem_id="exported",
        )
        gr.Markdown("Then: `ollama create NAME -f Modelfile` in the folder you downloaded them to.")

        gr.Markdown("#### Exchange an adapter with a peer (`tllm adapters export | import`)")
        with gr.Row():
            outgoing = gr.Dropdown(choices=adapters(), label="Adapter", elem_id="share-adapter")
            archive_button = gr.Button("Export archive", elem_id="export-archive")
        archive_said = gr.Markdown(elem_id="archive-result")
        archive = gr.File(label="Archive", interactive=False, elem_id="archive")
        with gr.Row():
            incoming = gr.File(label="Archive to import (.tar)", elem_id="import-archive")
            with gr.Column():
                import_name = gr.Textbox(
                    label="Name (default: as exported)", elem_id="import-adapter-name"
                )
                sha256 = gr.Textbox(
                    label="sha256 the sender gave (optional)", elem_id="import-adapter-sha256"
                )
                import_button = gr.Button("Import", elem_id="import-adapter")
        imported = gr.Markdown(elem_id="import-adapter-result")

        gr.Markdown("#### Merge adapters (`tllm adapters merge`)")
        with gr.Row():
            parents = gr.CheckboxGroup(choices=adapters(), label="Adapters", elem_id="merge-from")
            method = gr.Dropdown(choices=list(MERGE_METHODS), value="svd", label="Method")
            merged_name = gr.Textbox(label="Merged adapter name", elem_id="merge-name")
            merge_button = gr.Button("Merge", elem_id="merge")
        merged = gr.Markdown(elem_id="merge-result")

        export_button.click(export_gguf, [chosen, quantization, export_name, replace], state)
        archive_button.click(export_archive, outgoing, [archive_said, archive])
        import_button.click(import_archive, [incoming, import_name, sha256], [imported, outgoing])
        merge_button.click(merge, [parents, method, merged_name], merged)
        tab.select(lists, None, [chosen, outgoing, parents])  # adapters trained meanwhile
        shown = gr.State(None)  # the export job and state whose files are offered
        gr.Timer(REFRESH_SECONDS).tick(refresh, shown, [state, downloads, shown])
