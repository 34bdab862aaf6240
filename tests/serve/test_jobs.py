"""The studio's background jobs: a `tllm` command run apart from any request, one at a
time per home, cancelled with SIGINT, and read back after the server that started it went
away."""

import json
import time

import pytest

from tests.serve.conftest import free_port
from together_llm.errors import TllmError
from together_llm.serve.jobs import Jobs


def wait(jobs, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while (job := jobs.get(job_id)).running:
        assert time.monotonic() < deadline, jobs.log(job_id)
        time.sleep(0.1)
    return job


def test_a_job_runs_to_the_end_and_its_output_is_kept(home):
    jobs = Jobs(home)
    job = jobs.start(["memories", "list", "--json"])
    done = wait(jobs, job.id)
    assert (done.state, done.returncode) == ("done", 0)
    assert json.loads(jobs.log(job.id)) == []
    assert jobs.latest().id == job.id


def test_one_job_at_a_time_and_cancel_stops_it(home):
    jobs = Jobs(home)
    server = jobs.start(["serve", "--port", str(free_port()), "--no-ui"])
    with pytest.raises(TllmError, match="still running"):
        jobs.start(["memories", "list"])
    time.sleep(2)  # let it start
    jobs.cancel(server.id)
    stopped = wait(jobs, server.id)
    assert stopped.state == "cancelled" and stopped.ended is not None
    with pytest.raises(TllmError, match="not running"):
        jobs.cancel(server.id)
    assert wait(jobs, jobs.start(["memories", "list"]).id).state == "done"


def test_a_job_whose_server_went_away_is_lost_not_running_forever(home):
    jobs = Jobs(home)
    job = wait(jobs, jobs.start(["memories", "list"]).id)
    path = home.path / "jobs" / job.id / "job.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "state": "running"}))  # as a killed server left it
    assert Jobs(home).get(job.id).state == "lost"
    with pytest.raises(TllmError, match="no job"):
        jobs.get("../etc")
