"""The studio's Teach tab in a real browser (Debian's chromium, driven by Playwright):
memories typed and forgotten, a dataset uploaded with its rejected rows shown, and the
datasets the next `tllm improve` teaches ticked."""

import json
import time

from tests.serve.test_web_chat import browser_page, server  # noqa: F401  (the module's server)

GOOD = [
    {
        "messages": [
            {"role": "user", "content": f"What is {n} plus {n}?"},
            {"role": "assistant", "content": f"{2 * n}."},
        ]
    }
    for n in range(3)
]
BAD = [
    {"messages": [{"role": "user", "content": "No answer here."}]},
    {"messages": [{"role": "robot", "content": "Beep."}, {"role": "assistant", "content": "?"}]},
]


def wait_until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.1)


def test_teach_tab_remembers_imports_and_marks_datasets(server, tmp_path):  # noqa: F811
    base, home = server
    upload = tmp_path / "sums.jsonl"
    upload.write_text("".join(json.dumps(row) + "\n" for row in GOOD + BAD))
    with browser_page(base) as page:
        page.get_by_role("tab", name="Teach").click()

        page.fill("#teach-memory textarea", "My dog is called Rex and she is a beagle.")
        page.click("#teach-remember")
        stored = home.path / "learn" / "memories"
        wait_until(lambda: any(stored.glob("*.json")))
        [path] = stored.glob("*.json")
        number = path.stem
        page.wait_for_function(
            "document.querySelector('#memories').innerText.includes('Rex')", timeout=30_000
        )

        page.set_input_files("#dataset-file input[type=file]", str(upload))
        page.fill("#dataset-name textarea", "sums")
        page.click("#import")
        page.wait_for_function(
            "document.querySelector('#import-result').innerText.includes('rows kept')",
            timeout=60_000,
        )
        result = page.inner_text("#import-result")
        assert "3 rows kept, 2 rejected" in result, result
        assert "line 4: role order" in result and "line 5: unknown role" in result, result
        assert (home.path / "datasets" / "sums" / "data.jsonl").read_text().count("\n") == 3
        assert list((home.path / "uploads").rglob("sums.jsonl"))  # the upload stayed home

        page.get_by_role("checkbox", name="sums").check()
        marks = home.path / "learn" / "teach.json"
        wait_until(lambda: marks.exists() and "sums" in marks.read_text())
        assert json.loads(marks.read_text()) == {"datasets": ["sums"]}
        page.screenshot(path=str(tmp_path / "teach.png"), full_page=True)

        page.fill("#forget-id input", number)
        page.click("#forget")
        wait_until(lambda: not path.exists())
        page.wait_for_function(
            "!document.querySelector('#memories').innerText.includes('Rex')", timeout=30_000
        )
