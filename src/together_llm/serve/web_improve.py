"""The studio's Improve tab: `tllm improve` from the browser, as a background job
(jobs.py), with its progress, its live loss curve, the side-by-side report when it ends, and
the versions with rollback. "Train with chosen settings" runs `tllm train` instead, with the
main fields of a recipe (dataset, stage, method, adapter name, epochs, learning rate, rank;
one left empty is chosen as `tllm train` chooses it), shown with the same progress and curve.

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
from ..data.store import list_datasets
from ..errors import TllmError
from ..learn.report import text_report
from ..learn.versions import Versions
from ..methods.registry import METHODS
from .jobs import Job, Jobs

REFRESH_SECONDS = 2.0
ADAPTER = "me"
STAGES = ("sft", "pt", "dpo", "orpo", "kto")  # the stages a dataset alone is enough for
VERSION_COLUMNS = ["version", "current", "from", "created", "learned", "scores"]


def trains(job: Job) -> str:
    """The adapter the job's training runs write: train's --name, improve's candidates."""
    if job.args[0] == "train" and "--name" in job.args:
        return job.args[job.args.index("--name") + 1]
    return f"{ADAPTER}.candidate"  # and its stages, me.candidate-sft ...


def training_runs(home, job: Job) -> list[Path]:
    """The training runs the job started, oldest first."""
    runs = home.path / "runs"
    if not runs.is_dir():
        return []
    name = trains(job)
    return sorted(
        p
        for p in runs.iterdir()
        if (p.name.split("-", 2)[-1] == name or p.name.split("-", 2)[-1].startswith(name + "-"))
        and p.stat().st_mtime >= job.started - 1
    )


def train_args(
    data: str, stage: str, method: str, name: str, replace: bool, epochs, lr: str, rank
) -> list[str]:
    """`tllm train`'s arguments for the fields given; an empty one is left to train."""
    if not data:
        raise TllmError("Choose the dataset to train on.")
    if not name.strip():
        raise TllmError("Name the adapter to train.")
    if name.strip() == ADAPTER:
        raise TllmError(f"{ADAPTER!r} is the assistant's own adapter, which Improve keeps")
    args = ["train", "--data", data, "--stage", stage, "--method", method, "--name", name.strip()]
    if replace:
        args.append("--overwrite")
    if epochs:
        args += ["--epochs", f"{float(epochs):g}"]
    if lr.strip():
        try:
            args += ["--lr", f"{float(lr):g}"]
        except ValueError:
            raise TllmError(f"learning rate {lr!r} is not a number, e.g. 1e-4") from None
    if rank:
        args += ["--rank", str(int(rank))]
    return args


def job_state_html(jobs: Jobs, job: Job, elem_id: str, label: str = "") -> str:
    """A job's command (or `label`) and state, in the element `elem_id`; then its last line."""
    said = jobs.said(job.id)
    shown = f"<pre>{html.escape(said)}</pre>" if said else ""
    return f"<p id='{elem_id}'>{label or job.args[0]} {html.escape(job.state)}</p>{shown}"


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
    parts = [f"<p id='improve-state'>{job.args[0]} {html.escape(job.state)}</p>"]
    if done and done.get("steps"):
        step, steps = int(done["step"]), int(done["steps"])
        loss = done.get("loss")
        parts.append(
            f"<progress id='improve-progress' value='{step}' max='{steps}'></progress> "
            f"step {step} of {steps} in {runs[-1].name}"
            + (f", loss {loss:.3f}" if isinstance(loss, (int, float)) else "")
        )
    said = Jobs(home).said(job.id)
    if said:
        parts.append(f"<pre>{html.escape(said)}</pre>")
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
    if job.args[0] != "improve":  # train says what it did in its last lines
        tail = Jobs(home).log(job.id).strip().splitlines()[-5:]
        return "```\n" + "\n".join(tail) + "\n```"
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


def dataset_names(home) -> list[str]:
    return [d.name for d in list_datasets(home)]


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

    def start(args: list[str]):
        try:
            jobs.start(args)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return refresh()

    def resume():
        """The latest job again, going on from its checkpoint."""
        job = jobs.latest()
        args = job.args if job is not None else ["improve"]
        return start(args if "--resume" in args else [*args, "--resume"])

    def train(*fields):
        try:
            args = train_args(*fields)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return start(args)

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
        with gr.Accordion("Train with chosen settings (tllm train)", open=False):
            with gr.Row():
                data = gr.Dropdown(
                    choices=dataset_names(home), label="Dataset", elem_id="train-data"
                )
                stage = gr.Dropdown(choices=list(STAGES), value="sft", label="Stage")
                method = gr.Dropdown(choices=list(METHODS), value="lora", label="Method")
                name = gr.Textbox(label="Adapter name", elem_id="train-name")
                replace = gr.Checkbox(label="Replace an adapter of this name", value=False)
            with gr.Row():
                epochs = gr.Number(label="Epochs (empty: chosen)", elem_id="train-epochs")
                lr = gr.Textbox(label="Learning rate (empty: chosen)", elem_id="train-lr")
                rank = gr.Number(label="LoRA rank (empty: chosen)", precision=0)
                run = gr.Button("Train", elem_id="train")
        state = gr.HTML(elem_id="improve-status")
        curve = gr.LinePlot(x="step", y="loss", color="run", label="Training loss")
        report = gr.Markdown(elem_id="improve-report")
        versions = gr.Dataframe(headers=VERSION_COLUMNS, label="Versions", elem_id="versions")
        with gr.Row():
            which = gr.Textbox(label="Version", placeholder=f"{ADAPTER}@1", elem_id="rollback-to")
            back = gr.Button("Roll back", elem_id="rollback")

        shown = [state, curve, report, versions, go, stop, again]
        go.click(lambda: start(["improve"]), None, shown)
        again.click(resume, None, shown)
        run.click(train, [data, stage, method, name, replace, epochs, lr, rank], shown)
        data.focus(lambda: gr.update(choices=dataset_names(home)), None, data)
        stop.click(cancel, None, shown)
        back.click(rollback, which, versions)
        gr.Timer(REFRESH_SECONDS).tick(refresh, None, shown)
