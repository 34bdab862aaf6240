"""A real browser (Debian's chromium, driven by Playwright) uses the web chat at /."""

import contextlib
import json
import shutil
import time

import pytest

from tests.serve.conftest import live_server
from together_llm.home import Home

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server whose answers are seeded, so the story is long enough to watch stream in."""
    home = Home.open(tmp_path_factory.mktemp("web") / "home")
    config = home.load_config()
    config.generation.seed = 4
    home.save_config(config)
    with live_server(home, log_path=home.path / "serve.log") as base:
        yield base, home


@contextlib.contextmanager
def browser_page(base):
    """A chromium page on the web chat at `base`, loaded and ready for a message."""
    from playwright import sync_api as playwright

    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/")
        page.wait_for_selector("#message textarea", timeout=60_000)
        yield page
        browser.close()


@pytest.fixture
def page(server):
    with browser_page(server[0]) as page:
        yield page


def bot_texts(page):
    return [el.inner_text() for el in page.query_selector_all("#chat .bot.message")]


def ask(page, text):
    page.fill("#message textarea", text)
    page.press("#message textarea", "Enter")


def wait_for_answer(page, count, timeout=120):
    """Wait until there are `count` answers and the last one stopped growing; return the
    lengths seen on the way (more than one means it streamed in)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        texts = bot_texts(page)
        if len(texts) >= count and texts[-1].strip():
            seen.append(len(texts[-1]))
            if len(seen) >= 30 and len(set(seen[-30:])) == 1:  # unchanged for 3 s
                return seen
        time.sleep(0.1)
    raise AssertionError(f"no finished answer after {timeout}s: {bot_texts(page)}")


def test_ask_see_the_answer_stream_and_rate_it(page, server, tmp_path):
    _, home = server
    ask(page, "Tell me a short story about a cat.")
    lengths = wait_for_answer(page, 1)
    assert lengths[-1] > 200  # the seeded story is long
    assert len(set(lengths)) > 1, "the answer arrived all at once, not streamed"
    answer = bot_texts(page)[-1]

    page.locator("#chat [aria-label='Like']").last.click()
    ratings = home.path / "feedback" / "ratings.jsonl"
    for _ in range(100):
        if ratings.exists() and answer.strip()[:20] in ratings.read_text():
            break
        time.sleep(0.1)
    row = json.loads(ratings.read_text().splitlines()[-1])
    assert row["label"] is True and row["model"] == "default"
    assert row["completion"].strip() == answer.strip()
    assert row["prompt"][-1] == {"role": "user", "content": "Tell me a short story about a cat."}

    page.click("#regenerate")
    page.wait_for_selector("#first-better", state="visible", timeout=120_000)
    assert len(bot_texts(page)) == 2  # both answers are shown to compare
    second = bot_texts(page)[-1]
    assert second != answer  # regenerate moved the seed on
    page.click("#second-better")
    page.wait_for_selector("#first-better", state="hidden", timeout=30_000)
    assert bot_texts(page) == [second]  # the better answer stays in the conversation
    choice = json.loads((home.path / "feedback" / "choices.jsonl").read_text().splitlines()[-1])
    assert (
        choice["chosen"].strip() == second.strip() and choice["rejected"].strip() == answer.strip()
    )
    page.screenshot(path=str(tmp_path / "web-chat.png"), full_page=True)
    assert (tmp_path / "web-chat.png").stat().st_size > 10_000


def edit(page, index: int, text: str):
    """Edit message `index` of the conversation with its pencil, and submit."""
    page.locator("#chat .message-row").nth(index).hover()
    page.locator("#chat [aria-label='Edit']").nth(index).click()
    page.locator("#chat textarea").last.fill(text)
    page.locator("#chat [aria-label='Submit']").click()


def test_an_edited_answer_is_a_correction_and_an_edited_question_is_asked_again(page, server):
    _, home = server
    ask(page, "What is my cat's name?")
    wait_for_answer(page, 1)
    [given] = bot_texts(page)
    edit(page, 1, "Your cat is called Pixel.")
    corrections = home.path / "feedback" / "corrections.jsonl"
    for _ in range(100):
        if corrections.exists() and "Pixel" in corrections.read_text():
            break
        time.sleep(0.1)
    row = json.loads(corrections.read_text().splitlines()[-1])
    assert row["prompt"][-1] == {"role": "user", "content": "What is my cat's name?"}
    assert row["completion"].strip() == given.strip() and row["model"] == "default"
    assert row["correction"] == "Your cat is called Pixel."
    choice = json.loads((home.path / "feedback" / "choices.jsonl").read_text().splitlines()[-1])
    assert (choice["chosen"], choice["source"]) == ("Your cat is called Pixel.", "correction")
    for _ in range(300):  # the page shows the edit once the event has ended
        if [t.strip() for t in bot_texts(page)] == ["Your cat is called Pixel."]:
            break
        time.sleep(0.1)
    assert [t.strip() for t in bot_texts(page)] == ["Your cat is called Pixel."]

    edit(page, 0, "What is my dog's name?")
    page.wait_for_function(
        "document.querySelector('#chat').innerText.includes(\"dog's name\")", timeout=30_000
    )
    wait_for_answer(page, 1)
    assert "Pixel" not in page.inner_text("#chat")  # the conversation after the question went
    assert len(bot_texts(page)) == 1 and len(corrections.read_text().splitlines()) == 1


def test_remember_stores_a_memory_with_its_questions(page, server):
    _, home = server
    page.fill("#remember textarea", "My dog is called Rex and she is a beagle.")
    page.click("#remember-button")
    stored = home.path / "learn" / "memories" / "1.json"
    for _ in range(600):
        if stored.exists():
            break
        time.sleep(0.1)
    memory = json.loads(stored.read_text())
    assert memory["text"] == "My dog is called Rex and she is a beagle."
    assert memory["answer"].startswith("Your dog is called Rex")
    assert memory["train"] and memory["held_out"]
    page.wait_for_function(
        "document.querySelector('#remember textarea').value === ''", timeout=30_000
    )
    page.fill("#remember textarea", "   ")
    page.click("#remember-button")  # nothing to remember: said, nothing stored
    page.wait_for_selector("text=Type what the assistant should remember", timeout=30_000)
    assert sorted(p.name for p in stored.parent.glob("*.json")) == ["1.json"]

    # "remember this" on a message of the person's: a click puts it in the box
    said = "My sister Ada is a pilot."
    page.fill("#remember textarea", "")
    ask(page, said)
    wait_for_answer(page, 1)
    page.locator("#chat .bot.message").first.click()  # an answer is not taken
    page.wait_for_timeout(1500)
    assert page.input_value("#remember textarea") == ""
    page.locator("#chat .user.message").first.click()
    page.wait_for_function(
        f"document.querySelector('#remember textarea').value === {said!r}", timeout=30_000
    )
    page.click("#remember-button")
    second = stored.parent / "2.json"
    for _ in range(600):
        if second.exists():
            break
        time.sleep(0.1)
    assert json.loads(second.read_text())["text"] == said


def test_answer_from_my_documents_lists_the_source_and_rates_the_plain_question(tmp_path):
    from tests.serve.test_web_assist import HONEY, corpus_home

    home = corpus_home(tmp_path)
    with live_server(home, log_path=home.path / "serve.log") as base, browser_page(base) as page:
        box = page.locator("#use-knowledge input[type=checkbox]")
        assert (
            box.is_enabled() and not box.is_checked()
        )  # documents, but knowledge is off by default
        box.check()
        ask(page, HONEY)
        page.wait_for_function(
            "document.querySelector('#chat').innerText.includes('beekeeping.txt')", timeout=120_000
        )
        answer, sources = bot_texts(page)
        assert "Meadowgold" in answer and sources.startswith("Sources")
        page.locator("#chat [aria-label='Like']").first.click()  # the answer's thumb
        ratings = home.path / "feedback" / "ratings.jsonl"
        for _ in range(100):
            if ratings.exists():
                break
            time.sleep(0.1)
        row = json.loads(ratings.read_text().splitlines()[-1])

        page.click("#regenerate")  # a second answer with its own sources, then keep one
        page.wait_for_selector("#first-better", state="visible", timeout=120_000)
        assert len(bot_texts(page)) == 4
        page.click("#second-better")
        page.wait_for_selector("#first-better", state="hidden", timeout=30_000)
        kept = bot_texts(page)
        choice = json.loads((home.path / "feedback" / "choices.jsonl").read_text().splitlines()[-1])
    assert row["prompt"][-1] == {"role": "user", "content": HONEY}  # not the retrieved sources
    assert row["completion"].strip() == answer.strip() and row["label"] is True
    assert len(kept) == 2 and "beekeeping.txt" in kept[1]  # the answer kept with its sources
    assert choice["prompt"][-1] == {"role": "user", "content": HONEY}
    assert "Meadowgold" in choice["chosen"] and "beekeeping" not in choice["chosen"]
