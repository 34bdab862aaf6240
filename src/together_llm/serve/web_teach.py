"""The web studio's Teach tab: what `tllm remember`, `tllm memories`, `tllm data import`
and `tllm data teach` do, in the browser.

- Memories: type one (the served base model writes more questions, as POST /v1/memories
  does), see them all with their questions, forget one by its id.
- Datasets: upload a file in any format `tllm data import` reads (told from its extension
  and first record), choose its kind and name; the kept and rejected counts are shown with
  the first rejected rows and their reasons. Uploads are bounded in size by the app
  (web.py); Gradio keeps the upload in its own folder, and the rows go into the home's
  datasets/ under the name given.
- Teach from: tick the datasets the next `tllm improve` teaches (learn/taught_data.py).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..data.importing.importer import import_file, plan
from ..data.kinds import KINDS
from ..data.store import check_dataset_name, list_datasets
from ..errors import TllmError
from ..learn.memories import MemoryStore
from ..learn.taught_data import STAGE_OF_KIND, TeachMarks
from .memories_api import remember_served

MEMORY_COLUMNS = ["id", "memory", "questions taught", "questions held out"]


def teach_tab(app: FastAPI) -> None:
    home = app.state.home

    def memory_rows() -> list[list]:
        return [[m.id, m.text, len(m.train), len(m.held_out)] for m in MemoryStore(home).all()]

    def teachable() -> tuple[list[str], list[str]]:
        """(datasets of kinds improve teaches, those marked)."""
        names = [d.name for d in list_datasets(home) if d.kind in STAGE_OF_KIND]
        marked = [n for n in TeachMarks(home).names() if n in names]
        return names, marked

    def teach_box():
        names, marked = teachable()
        return gr.update(choices=names, value=marked)

    def add_memory(text: str):
        if not text.strip():
            raise gr.Error("Type what the assistant should remember.")
        try:
            memory = remember_served(app.state, text)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        gr.Info(f"Remembered #{memory.id}; the next improve teaches it.")
        return "", memory_rows()

    def forget(memory_id):
        store = MemoryStore(home)
        if memory_id is None or not store.exists(int(memory_id)):
            raise gr.Error(f"There is no memory #{memory_id}.")
        store.forget(int(memory_id))
        gr.Info(f"Forgot #{int(memory_id)}; the next improve unlearns it.")
        return memory_rows()

    def upload(file, kind: str, name: str):
        if file is None:
            raise gr.Error("Choose a file to import.")
        try:
            check_dataset_name(name.strip())
            how = plan(Path(file), kind)
            summary = import_file(home, how, name.strip())
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        lines = [
            f"**{summary.rows} rows kept, {summary.total_rejected} rejected** "
            f"(format {summary.format}"
            + (f", told from {summary.detected})" if summary.detected else ")")
        ]
        lines += [f"- {reason}: {count}" for reason, count in summary.rejected.most_common()]
        if summary.first_rejected:
            lines.append("\nFirst rejected rows:")
            lines += [
                f"- line {r['line']}: {r['reason']}: {r['detail']}" for r in summary.first_rejected
            ]
        if not summary.written:
            lines.append("\nNothing was imported: no row is valid.")
        return "\n".join(lines), teach_box()

    def mark(chosen: list[str]):
        marks = TeachMarks(home)
        try:
            for name in set(marks.names()) - set(chosen):
                marks.unmark(name)
            for name in chosen:
                marks.mark(name)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return teach_box()

    with gr.Tab("Teach", id="teach-tab"):
        gr.Markdown(
            "Tell the assistant about you, import data and choose what it learns. "
            "Nothing is trained until **Improve** runs (`tllm improve`)."
        )
        with gr.Row():
            memory = gr.Textbox(
                placeholder="My dog is called Rex and she is a beagle.",
                label="Remember",
                elem_id="teach-memory",
                scale=4,
            )
            keep = gr.Button("Remember", elem_id="teach-remember")
        memories = gr.Dataframe(
            headers=MEMORY_COLUMNS, value=memory_rows, label="Memories", elem_id="memories"
        )
        with gr.Row():
            which = gr.Number(label="Memory id", precision=0, elem_id="forget-id")
            drop = gr.Button("Forget", elem_id="forget")
        gr.Markdown("#### Import a dataset")
        with gr.Row():
            file = gr.File(
                label="File (JSON, JSON Lines, CSV, text)",
                file_types=[".json", ".jsonl", ".csv", ".txt", ".md"],
                elem_id="dataset-file",
            )
            with gr.Column():
                kind = gr.Dropdown(choices=list(KINDS), value="chat", label="Kind")
                name = gr.Textbox(label="Dataset name", elem_id="dataset-name")
                load = gr.Button("Import", elem_id="import")
        imported = gr.Markdown(elem_id="import-result")
        names, marked = teachable()
        taught = gr.CheckboxGroup(
            choices=names,
            value=marked,
            label="Teach from these datasets at the next improve",
            elem_id="teach-from",
        )

        keep.click(add_memory, memory, [memory, memories])
        memory.submit(add_memory, memory, [memory, memories])
        drop.click(forget, which, memories)
        load.click(upload, [file, kind, name], [imported, taught])
        taught.input(mark, taught, taught)
