"""The studio's Together tab in a real browser: a federated run of the home listed with its
rounds and its held-out loss curve; joining by address runs `tllm together join` as a job
(refused at once without the coordinator's certificate, and left with Leave)."""

import json

import yaml

from tests.serve.conftest import free_port, live_server
from tests.serve.test_web_chat import browser_page
from tests.serve.test_web_share import wait_text
from tests.train.conftest import chat_rows, write_dataset
from together_llm.home import Home

RUN = "20261207-120000-together"


def recorded_run(home: Home) -> None:
    """A finished two-round run, as the recorder writes it (together/metrics.py)."""
    folder = home.together_dir / RUN
    folder.mkdir(parents=True)
    config = {"strategy": "fedavg", "aggregate": "exact", "data": "sounds", "name": "shared"}
    (folder / "config.yaml").write_text(yaml.safe_dump({**config, "rounds": 2}))
    records = [
        {"round": 0, "global_eval_loss": 3.5, "peers": {}},
        *(
            {
                "round": n,
                "global_eval_loss": 3.5 - n,
                "peers": {f"peer-{p}": {"train_loss": 3.0 - n + p / 10} for p in (1, 2)},
            }
            for n in (1, 2)
        ),
        {"finished": {"homes": []}},
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_together_tab_shows_runs_and_joins_and_leaves(tmp_path):
    home = Home.open(tmp_path / "home")
    write_dataset(home, "sounds", "chat", chat_rows())
    recorded_run(home)
    with live_server(home, log_path=home.path / "serve.log") as base, browser_page(base) as page:
        page.get_by_role("tab", name="Together").click()
        listed = wait_text(page, "#fed-runs", RUN)
        assert "finished" in listed and "2/2" in listed and "1.5000" in listed, listed
        page.wait_for_function(  # the curve's legend: the held-out loss and each peer's
            "['global', 'peer-1', 'peer-2'].every("
            "n => document.querySelector('#fed-curve').textContent.includes(n))",
            timeout=30_000,
        )
        page.screenshot(path=str(tmp_path / "together.png"), full_page=True)

        page.fill("#join-address textarea", f"127.0.0.1:{free_port()}")
        page.locator("#join-data input").click()
        page.get_by_role("option", name="sounds").click()
        page.click("#join")  # neither a certificate nor "No TLS"
        page.wait_for_selector("text=Upload the coordinator's CA certificate", timeout=30_000)
        assert not (home.path / "jobs").exists()

        page.get_by_label("No TLS (a coordinator on this machine only)").check()
        page.click("#join")
        wait_text(page, "#join-status", "join running")
        [job] = [json.loads(p.read_text()) for p in (home.path / "jobs").glob("*/job.json")]
        assert job["args"][:3] == ["together", "join", page.input_value("#join-address textarea")]
        assert "--insecure" in job["args"] and "--data" in job["args"]
        page.click("#leave")
        wait_text(page, "#join-status", "join cancelled")
