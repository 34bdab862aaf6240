"""The studio's Measure tab: `tllm eval --report` from the browser, as a background job
(jobs.py), and the reports of every evaluation the home has run, with their charts.

A report is read from its run folder (runs/<time>-eval-<label>/report.md and plots/*.png, written by
evaluate/report.py); the charts are shown beside the text instead of through its relative
image links, which a page served elsewhere could not follow. The arena has a tab of its own.
"""

from __future__ import annotations

import re

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..adapters.store import list_adapters
from ..data.store import list_datasets
from ..errors import TllmError
from ..home import Home
from .jobs import Jobs
from .web_improve import job_state_html

BASE = "(the assistant's model alone)"
IMAGE_LINE = re.compile(r"^!\[[^\]]*\]\([^)]*\)\s*$", re.MULTILINE)


def reports(home: Home) -> list[str]:
    """The evaluations with a report, newest first (their run ids)."""
    runs = home.path / "runs"  # <time>-eval-<label>/, as evaluate/run.py names them
    found = runs.glob("*-eval-*/report.md") if runs.is_dir() else []
    return sorted((p.parent.name for p in found), reverse=True)


def report_page(home: Home, run_id: str | None) -> tuple[str, list[str]]:
    """(the report's text without its image links, its charts)."""
    if not run_id or run_id not in reports(home):
        return "No evaluation with a report yet.", []
    folder = home.path / "runs" / run_id
    text = IMAGE_LINE.sub("", (folder / "report.md").read_text(encoding="utf-8"))
    return text, [str(p) for p in sorted((folder / "plots").glob("*.png"))]


def measure_tab(app: FastAPI) -> None:
    home: Home = app.state.home
    jobs: Jobs = app.state.jobs

    def evaluate(data: str, adapter: str):
        if not data:
            raise gr.Error("Choose the dataset to measure on.")
        args = ["eval", "--data", data, "--report"]
        if adapter and adapter != BASE:
            args += ["--adapter", adapter]
        try:
            jobs.start(args)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return state()

    def state() -> str:
        job = jobs.latest()
        if job is None or job.args[0] != "eval":
            return "<p id='eval-state'>No evaluation running.</p>"
        return job_state_html(jobs, job, "eval-state")

    def choices():
        names = list_adapters(home)
        data = [d.name for d in list_datasets(home)]
        listed = reports(home)
        return (
            gr.update(choices=data),
            gr.update(choices=[BASE, *names]),
            gr.update(choices=listed, value=listed[0] if listed else None),
        )

    def refresh(newest: str | None):
        """The job's state; a report newer than the newest seen is shown as it appears
        (one chosen from the list stays until then)."""
        listed = reports(home)
        if listed and listed[0] != newest:
            text, charts = report_page(home, listed[0])
            return state(), gr.update(choices=listed, value=listed[0]), text, charts, listed[0]
        return state(), gr.update(), gr.update(), gr.update(), newest

    with gr.Tab("Measure", id="measure-tab") as tab:
        gr.Markdown(
            "How good is the assistant on a dataset, beside its base model: `tllm eval "
            "--report` (perplexity, ROUGE/BLEU/chrF, exact match, multiple choice, as the "
            "dataset's kind allows). The Arena tab compares answers by vote."
        )
        with gr.Row():
            data = gr.Dropdown(label="Dataset", elem_id="eval-data")
            adapter = gr.Dropdown(choices=[BASE], value=BASE, label="Adapter", elem_id="eval-as")
            go = gr.Button("Evaluate", elem_id="evaluate")
        status = gr.HTML(elem_id="eval-status")
        listed = reports(home)
        which = gr.Dropdown(
            choices=listed,
            value=listed[0] if listed else None,
            label="Report",
            elem_id="eval-report-choice",
        )
        text, charts = report_page(home, listed[0] if listed else None)
        report = gr.Markdown(text, elem_id="eval-report")
        gallery = gr.Gallery(charts, label="Charts", columns=2, elem_id="eval-charts")

        go.click(evaluate, [data, adapter], status)
        which.input(lambda run: report_page(home, run), which, [report, gallery])
        tab.select(choices, None, [data, adapter, which]).then(
            lambda run: report_page(home, run), which, [report, gallery]
        )
        newest = gr.State(listed[0] if listed else None)
        gr.Timer(2.0).tick(refresh, newest, [status, which, report, gallery, newest])
