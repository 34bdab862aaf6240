"""The studio's Knowledge tab in a real browser (Debian's chromium, driven by Playwright):
documents uploaded into the home's index and listed with their chunk counts, a broken one
named with its reason, a search that finds the passage, a document uploaded again under
its name replacing the old one, and one removed."""

import sqlite3

from tests.serve.test_web_chat import browser_page, server  # noqa: F401  (the module's server)
from tests.serve.test_web_teach import wait_until

CAT = """# The observatory

The observatory on the hill opened in 1931. Its director is Dr. Ines Varga.

## The cat

The observatory cat is called Nebula. She sleeps under the big refractor.
"""


def documents(home) -> list[tuple]:
    path = home.knowledge_dir / "index.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, source, chunks FROM documents ORDER BY id").fetchall()


def test_knowledge_tab_adds_lists_searches_replaces_and_removes(server, tmp_path):  # noqa: F811
    base, home = server
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "observatory notes.md").write_text(CAT)
    (folder / "tickets.txt").write_text("A ticket for a public night costs 12 euros.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with browser_page(base) as page:
        page.get_by_role("tab", name="Knowledge").click()
        page.set_input_files(
            "#knowledge-files input[type=file]", [str(p) for p in sorted(folder.iterdir())]
        )
        page.click("#knowledge-add")
        page.wait_for_function(
            "document.querySelector('#knowledge-result').innerText.includes('added')",
            timeout=60_000,
        )
        result = page.inner_text("#knowledge-result")
        assert "2 added" in result, result
        assert "not indexed: broken.pdf" in result, result
        stored = documents(home)
        assert len(stored) == 2
        uploads = home.knowledge_dir / "uploads"
        # copied under the home with a name the server chose, not left in Gradio's temp
        assert {row[1] for row in stored} == {
            str(uploads / "observatory_notes.md"),
            str(uploads / "tickets.txt"),
        }
        assert sorted(p.name for p in uploads.iterdir()) == ["observatory_notes.md", "tickets.txt"]
        page.wait_for_function(
            "document.querySelector('#documents').innerText.includes('observatory_notes.md')",
            timeout=30_000,
        )
        listed = page.inner_text("#documents")
        assert "The observatory" in listed and "tickets.txt" in listed, listed

        page.fill("#knowledge-query textarea", "What is the name of the observatory cat?")
        page.click("#knowledge-search")
        page.wait_for_function(
            "document.querySelector('#knowledge-hits').innerText.includes('[1]')",
            timeout=30_000,
        )
        hits = page.inner_text("#knowledge-hits")
        assert "Nebula" in hits.split("[2]")[0], hits  # the cat's passage first
        page.screenshot(path=str(tmp_path / "knowledge.png"), full_page=True)

        # the same name again, new content: the document is re-read, not added twice
        (folder / "tickets.txt").write_text("A ticket for a public night now costs 15 euros.\n")
        page.set_input_files("#knowledge-files input[type=file]", str(folder / "tickets.txt"))
        page.click("#knowledge-add")
        page.wait_for_function(
            "document.querySelector('#knowledge-result').innerText.includes('1 updated')",
            timeout=60_000,
        )
        assert len(documents(home)) == 2
        assert "15 euros" in (uploads / "tickets.txt").read_text()

        ticket_id = next(row[0] for row in documents(home) if row[1].endswith("tickets.txt"))
        page.fill("#document-id input", str(ticket_id))
        page.click("#knowledge-remove")
        wait_until(lambda: len(documents(home)) == 1)
        assert not (uploads / "tickets.txt").exists()
        page.wait_for_function(
            "!document.querySelector('#documents').innerText.includes('tickets.txt')",
            timeout=30_000,
        )
