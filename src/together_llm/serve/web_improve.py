"""The studio's Improve tab: `tllm improve` from the browser, as a background job
(jobs.py), with its progress, its live loss curve, the side-by-side report when it ends, and
the versions with rollback.

The job runs apart from the page: closing the tab does not stop it, and the page shows the
latest job of the home whenever it is opened (a timer reads its state every
REFRESH_SECONDS). Cancel sends SIGINT, so training saves a checkpoint; Resume starts
`tllm improve --resume`, which goes on from it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import gradio as gr  # this module is imported only when the web chat is on
import pandas as pd
from fastapi import FastAPI

from ..adapters.card import Improved
from ..errors import TllmError
from ..learn.report import text_report
from ..learn.versions import Versions
from .jobs import Job, Jobs

REFRESH_SECONDS = 2.0
ADAPTER = "me"
VERSION_COLUMNS = ["version", "current", "from", "created", "learned", "scores"]


def training_runs(home, job: Job) -> list[Path]:
    """The training runs the job started (the candidate's stages), oldest first."""
    runs = home.path / "runs"
    if not runs.is_dir():
        return []
    return sorted(
        p
        for p in runs.iterdir()
        if p.name.split("-", 2)[-1].startswith(f"{ADAPTER}.candidate")
        and p.stat().st_mtime >= job.started - 1
    )


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def progress_html(home, job: Job | None) -> str:
    """The job's state, what it does now, and a bar for the training stage running."""
    if job is None:
        return "<p id='improve-state'>No improve has run yet.</p>"
    runs = training_runs(home, job)
    done = read_json(runs[-1] / "progress.json") if runs else None
    lines = [line for line in Jobs(home).log(job.id).splitlines() if line.strip()]
    parts = [f"<p id='improve-state'>improve {html.escape(job.state)}</p>"]
    if done and done.get("steps"):
        step, steps = int(done["step"]), int(done["steps"])
        loss = done.get("loss")
        parts.append(
            f"<progress id='improve-progress' value='{step}' max='{steps}'></progress> "
            f"step {step} of {steps} in {runs[-1].name}"
            + (f", loss {loss:.3f}" if isinstance(loss, (int, float)) else "")
        )
    if lines:
        parts.append(f"<pre>{html.escape(lines[-1][-300:])}</pre>")
    return "\n".join(parts)


def loss_frame(home, job: Job | None) -> pd.DataFrame:
    rows = []
    for run in training_runs(home, job) if job else []:
        path = run / "log.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
            record = json.loads(line)
            if "loss" in record:
                rows.append({"step": record["step"], "loss": record["loss"], "run": run.name})
    return pd.DataFrame(rows, columns=["step", "loss", "run"])


def report_text(home, job: Job | None) -> str:
    """The round's side-by-side report once the job ended (or what it said)."""
    if job is None or job.running:
        return ""
    reports = sorted((home.path / "learn" / "runs").glob("*/report.json"))
    latest = reports[-1] if reports else None
    if latest is not None and latest.stat().st_mtime >= job.started - 1:
        outcome = read_json(latest) or {}
        return "```\n" + text_report(outcome) + "\n```"
    tail = Jobs(home).log(job.id).strip().splitlines()[-5:]
    return "```\n" + "\n".join(tail) + "\n```"


def version_rows(home) -> list[list]:
    versions = Versions(home, ADAPTER)
    current = versions.current()
    rows = []
    for number in versions.numbers():
        card = versions.card(number)
        improved = card.improved or Improved()
        scores = ", ".join(
            f"{name} {100 * value:.0f}%"
            for name, value in (improved.scores or {}).items()
            if value is not None
        )
        rows.append(
            [
                f"{ADAPTER}@{number}",
                "*" if number == current else "",
                f"{ADAPTER}@{improved.parent}" if improved.parent else "base",
                card.created or "",
                ", ".join("#" + i for i in improved.new or []),
                scores,
            ]
        )
    return rows


def improve_tab(app: FastAPI) -> None:
    home = app.state.home
    jobs: Jobs = app.state.jobs

    def refresh():
        job = jobs.latest()
        running = job is not None and job.running
        return (
            progress_html(home, job),
            loss_frame(home, job),
            report_text(home, job),
            version_rows(home),
            gr.update(interactive=not running),
            gr.update(interactive=running),
            gr.update(interactive=not running),
        )

    def start(*args: str):
        try:
            jobs.start(["improve", *args])
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return refresh()

    def cancel():
        job = jobs.latest()
        if job is None or not job.running:
            raise gr.Error("No improve is running.")
        jobs.cancel(job.id)
        gr.Info("Stopping after a checkpoint; Resume goes on from it.")
        return refresh()

    def rollback(version: str):
        versions = Versions(home, ADAPTER)
        try:
            versions.rollback(int(str(version).rsplit("@", 1)[-1]))
        except (TllmError, ValueError) as exc:
            raise gr.Error(f"cannot roll back to {version!r}: {exc}") from None
        gr.Info(f"{ADAPTER} is now {version}; the chat answers with it.")
        return version_rows(home)

    with gr.Tab("Improve", id="improve-tab"):
        gr.Markdown(
            "Teach the assistant what is new (memories, corrections, choices, ratings and "
            "the datasets ticked under Teach), and keep the result only if it is better "
            "and forgets nothing: `tllm improve`, running in the background."
        )
        with gr.Row():
            go = gr.Button("Improve", variant="primary", elem_id="improve")
            stop = gr.Button("Cancel", elem_id="cancel-improve", interactive=False)
            again = gr.Button("Resume", elem_id="resume-improve")
        state = gr.HTML(elem_id="improve-status")
        curve = gr.LinePlot(x="step", y="loss", color="run", label="Training loss")
        report = gr.Markdown(elem_id="improve-report")
        versions = gr.Dataframe(headers=VERSION_COLUMNS, label="Versions", elem_id="versions")
        with gr.Row():
            which = gr.Textbox(label="Version", placeholder=f"{ADAPTER}@1", elem_id="rollback-to")
            back = gr.Button("Roll back", elem_id="rollback")

        shown = [state, curve, report, versions, go, stop, again]
        go.click(lambda: start(), None, shown)
        again.click(lambda: start("--resume"), None, shown)
        stop.click(cancel, None, shown)
        back.click(rollback, which, versions)
        gr.Timer(REFRESH_SECONDS).tick(refresh, None, shown)
