"""The studio's Together tab: the home's federated runs (`tllm together status`) with each
run's held-out loss round by round, and joining a federation by its address
(`tllm together join`) as a background job (jobs.py) that Cancel leaves.

The coordinator's CA certificate is uploaded and kept under the home's
`together/certs/ADDRESS.pem` (a name the server chooses from the address); joining without
TLS is only offered for a coordinator on this machine, as `join --insecure` allows.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import gradio as gr  # this module is imported only when the web chat is on
import pandas as pd
from fastapi import FastAPI

from ..data.store import list_datasets
from ..errors import TllmError
from ..home import Home
from ..together import metrics
from .jobs import Jobs
from .web_improve import job_state_html

RUN_COLUMNS = ["run", "state", "rounds", "peers", "strategy", "held-out loss"]
SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_rows(home: Home) -> list[list]:
    rows = []
    for path in reversed(metrics.list_runs(home)):  # newest first
        run = metrics.summary(path)
        loss = run["global_eval_loss"]
        rows.append(
            [
                run["run_id"],
                run["state"],
                f"{run['rounds_done']}/{run['rounds']}",
                len(run["peers"]),
                f"{run['strategy']}/{run['aggregate']}",
                "-" if loss is None else f"{loss:.4f}",
            ]
        )
    return rows


def round_frame(home: Home, run_id: str | None) -> pd.DataFrame:
    """Round by round: the global held-out loss, and each peer's training loss."""
    rows: list[dict] = []
    if run_id:
        try:
            path = metrics.find_run(home, run_id)
        except TllmError:
            path = None
        for record in metrics.read(path / "metrics.jsonl") if path else []:
            if "round" not in record:
                continue
            if record.get("global_eval_loss") is not None:
                rows.append(
                    {"round": record["round"], "loss": record["global_eval_loss"], "of": "global"}
                )
            for peer, seen in (record.get("peers") or {}).items():
                if seen.get("train_loss") is not None:
                    rows.append({"round": record["round"], "loss": seen["train_loss"], "of": peer})
    return pd.DataFrame(rows, columns=["round", "loss", "of"])


def keep_certificate(home: Home, uploaded: Path, address: str) -> Path:
    folder = home.path / "together" / "certs"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{SAFE.sub('_', address).strip('._') or 'coordinator'}.pem"
    shutil.copyfile(uploaded, target)
    return target


def join_args(home: Home, address: str, data: str, certificate, insecure: bool) -> list[str]:
    if not address.strip():
        raise TllmError("Give the coordinator's address, HOST:PORT.")
    if not data:
        raise TllmError("Choose the dataset this home trains on (it never leaves it).")
    args = ["together", "join", address.strip(), "--data", data]
    if insecure:
        return [*args, "--insecure"]  # join itself refuses it beyond loopback
    if certificate is None:
        raise TllmError("Upload the coordinator's CA certificate (ca.pem) it gave you.")
    return [*args, "--root-cert", str(keep_certificate(home, Path(certificate), address))]


def together_tab(app: FastAPI) -> None:
    home: Home = app.state.home
    jobs: Jobs = app.state.jobs

    def state() -> str:
        job = jobs.latest()
        if job is None or job.args[:2] != ["together", "join"]:
            return "<p id='join-state'>Not in a federation.</p>"
        return job_state_html(jobs, job, "join-state", "join")

    def join(address: str, data: str, certificate, insecure: bool):
        try:
            jobs.start(join_args(home, address, data, certificate, insecure))
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        return state()

    def leave():
        job = jobs.latest()
        if job is None or not job.running or job.args[:2] != ["together", "join"]:
            raise gr.Error("This home is not in a federation.")
        jobs.cancel(job.id)
        return state()

    def shown(run_id: str | None):
        return round_frame(home, run_id)

    def listed():
        rows = run_rows(home)
        ids = [row[0] for row in rows]
        return (
            rows,
            gr.update(choices=ids),
            gr.update(choices=[d.name for d in list_datasets(home)]),
        )

    with gr.Tab("Together", id="together-tab") as tab:
        gr.Markdown(
            "Improve together with other assistants: each trains one shared adapter on its "
            "own data, and only the adapter's tensors travel (`tllm together`)."
        )
        runs = gr.Dataframe(
            headers=RUN_COLUMNS, value=lambda: run_rows(home), label="Runs", elem_id="fed-runs"
        )
        run_ids = [row[0] for row in run_rows(home)]
        which = gr.Dropdown(
            choices=run_ids,
            value=run_ids[0] if run_ids else None,
            label="Run",
            elem_id="fed-run",
        )
        curve = gr.LinePlot(
            value=lambda: round_frame(home, run_ids[0] if run_ids else None),
            x="round",
            y="loss",
            color="of",
            label="Loss by round (global: held out)",
            elem_id="fed-curve",
        )
        gr.Markdown("#### Join a federation (`tllm together join`)")
        with gr.Row():
            address = gr.Textbox(label="Coordinator HOST:PORT", elem_id="join-address")
            data = gr.Dropdown(label="Dataset (stays here)", elem_id="join-data")
            certificate = gr.File(
                label="The coordinator's ca.pem", file_types=[".pem"], elem_id="join-cert"
            )
            insecure = gr.Checkbox(label="No TLS (a coordinator on this machine only)")
        with gr.Row():
            go = gr.Button("Join", elem_id="join")
            stop = gr.Button("Leave", elem_id="leave")
        status = gr.HTML(elem_id="join-status")

        which.input(shown, which, curve)
        tab.select(listed, None, [runs, which, data])
        go.click(join, [address, data, certificate, insecure], status)
        stop.click(leave, None, status)
        gr.Timer(2.0).tick(state, None, status)
