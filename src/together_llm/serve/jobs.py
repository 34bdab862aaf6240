"""Long work started from the web studio, run apart from any request: a `tllm` command in
a subprocess of the server, so closing the browser tab does not stop it and reopening the
page shows where it is.

    jobs/<id>/job.json   what runs (the command), its state, pid, times and exit status
    jobs/<id>/log.txt    what it says (stdout and stderr), read back for the page

One job at a time per home: a second is refused with the running one's name (the commands
themselves lock too, e.g. `tllm improve`'s per-home lock). Cancelling sends SIGINT, which a
training run answers by saving a checkpoint, so the same job started with --resume goes on.
A job whose server went away while it ran is found by its pid being gone: "lost".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

from ..errors import TllmError
from ..home import Home, new_run_id

LOG_TAIL = 20_000  # characters of a job's log the page shows


@dataclass
class Job:
    id: str
    args: list[str]  # what follows `tllm`
    state: str = "running"  # running, done, failed, cancelled, lost
    pid: int | None = None
    started: float = 0.0
    ended: float | None = None
    returncode: int | None = None
    cancelling: bool = False  # asked to stop; it is "cancelled" once it has

    @property
    def running(self) -> bool:
        return self.state == "running"


class Jobs:
    def __init__(self, home: Home):
        self.home = home
        self.folder = home.path / "jobs"
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen] = {}

    def start(self, args: list[str]) -> Job:
        """Run `tllm ARGS` for this home; refused while another job runs."""
        with self._lock:
            running = self.latest()
            if running is not None and running.running:
                raise TllmError(
                    f"`tllm {' '.join(running.args)}` is still running (job {running.id}): "
                    "wait for it, or cancel it"
                )
            self.folder.mkdir(parents=True, exist_ok=True)
            job = Job(new_run_id(self.folder, args[0]), list(args), started=time.time())
            path = self.folder / job.id
            path.mkdir()
            log = open(path / "log.txt", "wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "together_llm.cli.main", *args],
                env={**os.environ, "TLLM_HOME": str(self.home.path)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the server's own Ctrl-C is not the job's
            )
            log.close()
            job.pid = process.pid
            self._processes[job.id] = process
            self._save(job)
        threading.Thread(target=self._wait, args=(job, process), daemon=True).start()
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask a running job to stop (SIGINT: training saves a checkpoint first)."""
        job = self.get(job_id)
        if not job.running or job.pid is None:
            raise TllmError(f"job {job_id} is not running ({job.state})")
        job.cancelling = True  # before the signal: the waiter reads it
        self._save(job)
        os.kill(job.pid, signal.SIGINT)
        return job

    def get(self, job_id: str) -> Job:
        path = self.folder / job_id / "job.json"
        if not job_id or "/" in job_id or not path.is_file():
            raise TllmError(f"no job {job_id!r}")
        job = Job(**json.loads(path.read_text(encoding="utf-8")))
        if job.running and job.id not in self._processes and not _alive(job.pid):
            job.state = "lost"  # its server stopped while it ran
        return job

    def latest(self) -> Job | None:
        if not self.folder.is_dir():
            return None
        found = sorted(p.name for p in self.folder.iterdir() if (p / "job.json").is_file())
        return self.get(found[-1]) if found else None

    def log(self, job_id: str) -> str:
        path = self.folder / self.get(job_id).id / "log.txt"
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        return text[-LOG_TAIL:]

    def said(self, job_id: str) -> str:
        """The last line the job wrote, as the studio's tabs show it ("" before any)."""
        lines = [line for line in self.log(job_id).splitlines() if line.strip()]
        return lines[-1][-300:] if lines else ""

    def _wait(self, job: Job, process: subprocess.Popen) -> None:
        code = process.wait()
        with self._lock:
            job = self.get(job.id)
            job.state = "cancelled" if job.cancelling else "done" if code == 0 else "failed"
            job.returncode, job.ended = code, time.time()
            self._save(job)
            self._processes.pop(job.id, None)

    def _save(self, job: Job) -> None:
        path = self.folder / job.id / "job.json"
        staging = path.with_name(".job.json.tmp")
        staging.write_text(json.dumps(asdict(job), indent=2) + "\n", encoding="utf-8")
        staging.replace(path)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
