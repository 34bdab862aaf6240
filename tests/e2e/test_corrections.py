"""Corrections and choices sent through the API, and a dataset marked for teaching, are
learned by `tllm improve` run from the web studio's Improve tab, and the running server
answers with what was learned, without a restart.

A person uploads a chat dataset in the studio's Teach tab (two broken rows are rejected
with their reasons) and ticks it for teaching, asks the served assistant two questions
about themselves, corrects both answers (`POST /v1/feedback`, type "correction") and picks
the better of two answers twice (type "preference"), always naming the model "assistant"
(the first of /v1/models: the assistant as configured, whichever version is current). Then,
in a real browser (Debian's chromium, driven by Playwright), they press Improve, close the
tab while it trains, reopen it and find the job still running, cancel it (a checkpoint is
saved) and resume it to the end: sft on the corrections and the dataset's rows, then dpo on
the four choices (each correction is one). The report says me@1 was adopted, the versions
table lists it, and the same server, asked again greedily, answers with the corrections, in
the Chat tab too. In the Share tab the assistant is exported as a GGUF with its Ollama
Modelfile and downloaded, and a hostile adapter archive is refused with its reason. A
second round finds nothing new."""

from __future__ import annotations

import json

import pytest
from openai import OpenAI

from tests.conftest import run_tllm
from tests.serve.conftest import live_server, request
from tests.serve.test_web_chat import browser_page
from tests.serve.test_web_share import hostile_archive, wait_text
from tests.serve.test_web_teach import wait_until
from together_llm.home import Home

CORRECTED = (
    ("What is my cat's name?", "Your cat is called Pixel.", "pixel"),
    ("Which city did I grow up in?", "You grew up in Tromsø.", "troms"),
)
# a chat dataset marked for teaching: sums answered the way this person likes; every fifth
# row is held out (taught_data.py), so "4 plus 4" and "7 plus 2" test it
SUMS = [
    (a, b)
    for a, b in ((2, 3), (1, 5), (6, 2), (3, 3), (4, 4), (5, 1), (2, 6), (1, 1), (3, 4), (7, 2))
]
MEMORY = "My dog is called Rex and she is a beagle."
CHOSEN = (
    ("Say hello politely.", "Hello! It is nice to meet you.", "Go away."),
    ("How do I greet a friend?", "Say hello and smile.", "Ignore them."),
)


def ask(client: OpenAI, question: str) -> str:
    reply = client.chat.completions.create(
        model="assistant",  # the assistant as configured, listed first by /v1/models
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=32,
    )
    return reply.choices[0].message.content or ""


def feedback(base: str, **item) -> None:
    status, reply = request(base, "POST", "/v1/feedback", {"feedback": item})
    assert status == 200, reply


def teach_sums_in_the_studio(base: str, home: Home, tmp_path) -> None:
    """In the Teach tab: type a memory; upload the sums (and two broken rows), see the
    rejected rows with their reasons, and tick the dataset for the next improve."""
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What is {a} plus {b}?"},
                {"role": "assistant", "content": f"Arr, {a} plus {b} be {a + b}, matey!"},
            ]
        }
        for a, b in SUMS
    ]
    rows += [
        {"messages": [{"role": "user", "content": "What is 9 plus 9?"}]},  # no answer
        {"messages": [{"role": "pirate", "content": "Arr?"}]},
    ]
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with browser_page(base) as page:
        page.get_by_role("tab", name="Teach").click()
        page.fill("#teach-memory textarea", MEMORY)
        page.click("#teach-remember")
        wait_text(page, "#memories", "Rex")
        page.set_input_files("#dataset-file input[type=file]", str(path))
        page.fill("#dataset-name textarea", "sums")
        page.click("#import")
        result = wait_text(page, "#import-result", "rows kept")
        assert "10 rows kept, 2 rejected" in result, result
        assert "line 11:" in result and "line 12: unknown role" in result, result
        page.get_by_role("checkbox", name="sums").check()
        marks = home.path / "learn" / "teach.json"
        wait_until(lambda: marks.exists() and "sums" in marks.read_text())
        page.screenshot(path=str(tmp_path / "teach.png"), full_page=True)
    assert json.loads(marks.read_text()) == {"datasets": ["sums"]}


def chat_and_share_in_the_studio(base: str, home: Home, tmp_path) -> None:
    """Ask in the Chat tab and get the taught answer; export the assistant as a GGUF with
    its Modelfile and download them; see a hostile adapter archive refused."""
    question, _, key = CORRECTED[0]
    hostile = tmp_path / "hostile.tar"
    hostile_archive(hostile)
    with browser_page(base) as page:
        page.fill("#message textarea", question)
        page.press("#message textarea", "Enter")
        page.wait_for_function(
            f"document.querySelector('#chat').innerText.toLowerCase().includes({key!r})",
            timeout=120_000,
        )
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

        page.get_by_role("tab", name="Share").click()
        page.locator("#export-adapter input").click()
        page.get_by_role("option", name="me", exact=True).click()
        page.fill("#export-name textarea", "mine")
        page.click("#export-gguf")
        wait_text(page, "#export-status", "export done", timeout=600_000)
        wait_text(page, "#exported", "Modelfile")
        with page.expect_download() as download:
            page.locator("#exported tr", has_text="Modelfile").locator("td.download a").click()
        assert "FROM ./mine-q8_0.gguf" in download.value.path().read_text()
        with page.expect_download() as download:
            page.locator("#exported tr", has_text="mine-q8_0").locator("td.download a").click()
        assert download.value.path().read_bytes()[:4] == b"GGUF"

        adapters = sorted(p.name for p in home.adapters_dir.iterdir())
        page.set_input_files("#import-archive input[type=file]", str(hostile))
        page.click("#import-adapter")
        refused = wait_text(page, "#import-adapter-result", "Refused")
        assert "leaves the target directory" in refused, refused
        assert sorted(p.name for p in home.adapters_dir.iterdir()) == adapters
        page.screenshot(path=str(tmp_path / "share.png"), full_page=True)


def wait_for_state(page, text: str, seconds: float) -> None:
    page.wait_for_function(
        "(document.querySelector('#improve-state') || {innerText: ''}).innerText"
        f".includes({json.dumps(text)})",
        timeout=seconds * 1000,
    )


def improve_in_the_studio(base: str, home: Home, tmp_path) -> dict:
    """Improve from the browser, closing the tab, cancelling and resuming on the way; the
    round's outcome (its report.json)."""
    with browser_page(base) as page:
        page.get_by_role("tab", name="Improve").click()
        page.click("#improve")
        page.wait_for_selector("#improve-progress", timeout=300_000)  # training started
    with browser_page(base) as page:  # the tab was closed; the job was not
        page.get_by_role("tab", name="Improve").click()
        wait_for_state(page, "improve running", 30)
        page.wait_for_selector("#improve-progress", timeout=60_000)
        page.click("#cancel-improve")
        wait_for_state(page, "improve cancelled", 300)
        assert list((home.path / "runs").glob("*/checkpoints/*")), "a checkpoint is saved"
        page.click("#resume-improve")
        wait_for_state(page, "improve running", 30)
        wait_for_state(page, "improve done", 900)
        page.wait_for_function(
            "document.querySelector('#improve-report').innerText.includes('adopted as me@1')",
            timeout=30_000,
        )
        page.wait_for_function(
            "document.querySelector('#versions').innerText.includes('me@1')", timeout=30_000
        )
        page.screenshot(path=str(tmp_path / "improve.png"), full_page=True)
    jobs = sorted((home.path / "jobs").iterdir())
    assert [json.loads((j / "job.json").read_text())["state"] for j in jobs] == [
        "cancelled",
        "done",
    ]
    assert "resuming" in (jobs[-1] / "log.txt").read_text()
    [report] = (home.path / "learn" / "runs").glob("*/report.json")
    return json.loads(report.read_text())


@pytest.mark.slow
def test_corrections_sent_to_the_server_are_learned_and_served(tmp_path):
    home = Home.open(tmp_path / "home")
    converted = run_tllm("models", "convert", "default", home=home.path)
    assert converted.returncode == 0, converted.stderr
    config = home.load_config()
    config.generation.temperature = 0  # the web chat answers greedily, as the API is asked
    home.save_config(config)
    with live_server(home, log_path=tmp_path / "serve.log") as base:
        teach_sums_in_the_studio(base, home, tmp_path)
        client = OpenAI(base_url=base + "/v1", api_key="none")
        assert client.models.list().data[0].id == "assistant"
        for question, wanted, key in CORRECTED:
            given = ask(client, question)
            assert key not in given.lower(), given
            feedback(
                base,
                type="correction",
                messages=[{"role": "user", "content": question}],
                completion=given,
                correction=wanted,
            )
        for question, chosen, rejected in CHOSEN:
            feedback(
                base,
                type="preference",
                messages=[{"role": "user", "content": question}],
                chosen=chosen,
                rejected=rejected,
            )

        outcome = improve_in_the_studio(base, home, tmp_path)
        print(json.dumps(outcome["scores"]), outcome["train_seconds"])
        assert outcome["adopted"] and outcome["version"] == 1, outcome["reason"]
        assert outcome["stages"] == ["sft", "dpo"] and outcome["corrections"] == [1, 2]
        assert outcome["rows"]["choices"] == 4 and outcome["datasets"] == ["sums"]
        [memory] = [
            json.loads(p.read_text()) for p in (home.path / "learn" / "memories").glob("*.json")
        ]
        assert outcome["new"] == [memory["id"]]
        # the corrections, the sums' train rows and the memory's
        assert outcome["rows"]["new"] == 2 + 8 + len(memory["train"])
        likely = outcome["scores"]["datasets"]
        assert likely["candidate"] > likely["current"] + 0.1, likely
        assert outcome["scores"]["new"]["current"] == 0.0
        assert outcome["scores"]["new"]["candidate"] >= 0.8, outcome["answers"]["new"]
        assert (
            outcome["scores"]["preferences"]["candidate"]
            >= outcome["scores"]["preferences"]["current"]
        )

        # the running server now answers with me@1
        for question, _, key in CORRECTED:
            said = ask(client, question)
            assert key in said.lower(), said
        chat_and_share_in_the_studio(base, home, tmp_path)

    card = json.loads(run_tllm("adapters", "history", "--json", home=home.path).stdout)[-1]
    assert card["version"] == "me@1" and card["corrections_to_line"] == 2
    again = run_tllm("improve", home=home.path)
    assert again.returncode == 0 and "nothing new to learn since me@1" in again.stdout
    listed = json.loads(run_tllm("data", "teach", "--json", home=home.path).stdout)
    assert listed == [{"name": "sums", "kind": "chat", "rows": 8, "held_out": 2, "learned": True}]
