"""Ingest: structure-aware chunks, incremental re-adding, and bad input named while the rest
is indexed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from together_llm.cli.knowledge import knowledge
from together_llm.knowledge.chunking import chunk_document
from together_llm.knowledge.documents import read_document
from together_llm.knowledge.index import KnowledgeIndex
from together_llm.knowledge.ingest import ingest
from together_llm.knowledge.search import search


def text_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text on each page."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        None,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def encrypted_pdf(text: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf([text]))))
    writer.encrypt(user_password="s3cret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _chunks(path: Path, **bounds):
    return chunk_document(read_document(path, path.read_bytes()), **bounds)


# --- structure -------------------------------------------------------------------------


def test_markdown_headings_become_chunk_titles(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\nWhat this is.\n\n## Install\n\nRun setup.\n\n```\n# a comment, not a heading\n```\n\n"
        "Usage\n-----\n\nCall it daily.\n"
    )
    chunks = _chunks(path)
    assert [(c.title, c.text.split()[0]) for c in chunks] == [
        ("Guide", "What"),
        ("Guide > Install", "Run"),
        ("Guide > Usage", "Call"),
    ]
    assert "# a comment, not a heading" in chunks[1].text
    text = path.read_text()
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_html_headings_become_titles_and_scripts_vanish(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Handbook</title><style>p{color:red}</style></head><body>"
        "<h1>Handbook</h1><p>Welcome &amp; hello.</p><h2>Leave <em>policy</em></h2>"
        "<p>Ask two weeks ahead.</p><ul><li>Form A</li><li>Form B</li></ul>"
        "<script>steal()</script></body></html>"
    )
    doc = read_document(path, path.read_bytes())
    chunks = chunk_document(doc)
    assert doc.title == "Handbook"
    assert [c.title for c in chunks] == ["Handbook", "Handbook > Leave policy"]
    assert chunks[0].text == "Welcome & hello."
    assert chunks[1].text == "Ask two weeks ahead.\n\nForm A\n\nForm B"
    assert "steal" not in doc.text and "color" not in doc.text
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


def test_pdf_pages_are_chunked_apart(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(text_pdf(["Revenue grew in spring", "Costs fell in autumn"]))
    chunks = _chunks(path)
    assert [(c.page, c.text) for c in chunks] == [
        (1, "Revenue grew in spring"),
        (2, "Costs fell in autumn"),
    ]


def test_long_sections_are_bounded_and_overlap_at_sentences(tmp_path):
    sentences = [f"Sentence {n} tells fact number {n} about the orchard." for n in range(60)]
    path = tmp_path / "long.txt"
    path.write_text(" ".join(sentences[:30]) + "\n\n" + " ".join(sentences[30:]))
    chunks = _chunks(path, max_words=50, overlap=12)
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 50 for c in chunks)
    assert all(c.text.startswith("Sentence") and c.text.endswith(".") for c in chunks)
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end  # the next chunk repeats the end of this one
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)  # nothing lost


# --- incremental ingest ----------------------------------------------------------------


def test_unchanged_files_are_skipped_and_changed_ones_replaced(home, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Plants\n\nThe fern needs shade.\n")
    (folder / "b.txt").write_text("The cat is called Miso.\n")
    with KnowledgeIndex.open(home) as index:
        first = ingest(index, [folder])
        assert len(first.added) == 2 and first.chunks == 2
        again = ingest(index, [folder])
        assert (again.added, again.updated, again.chunks) == ([], [], 0)
        assert sorted(Path(p).name for p in again.unchanged) == ["a.md", "b.txt"]

        (folder / "a.md").write_text(
            "# Plants\n\nThe cactus wants sun.\n\n## Water\n\nWater it monthly.\n"
        )
        before = {d.source: d.id for d in index.documents()}
        changed = ingest(index, [folder])
        assert [Path(p).name for p in changed.updated] == ["a.md"] and len(changed.unchanged) == 1
        after = {d.source: d.id for d in index.documents()}
        assert after == before  # ids survive an update
        a_id = before[str((folder / "a.md").resolve())]
        assert index.chunk_texts(a_id) == ["The cactus wants sun.", "Water it monthly."]
        assert search(index, "fern shade") == []  # the old chunk is gone from the FTS index too
        assert Path(search(index, "cactus")[0].source).name == "a.md"
        assert index.chunk_count() == 3


def test_remove_deletes_a_document_and_its_chunks(home, tmp_path):
    (tmp_path / "x.txt").write_text("Zebras are striped.")
    (tmp_path / "y.txt").write_text("Yaks are hairy.")
    runner = CliRunner()
    added = runner.invoke(
        knowledge,
        ["add", str(tmp_path / "x.txt"), str(tmp_path / "y.txt"), "--home", str(home.path)],
    )
    assert added.exit_code == 0 and "2 added" in added.output
    listed = json.loads(
        runner.invoke(knowledge, ["list", "--json", "--home", str(home.path)]).output
    )
    x_id = next(d["id"] for d in listed if d["source"].endswith("x.txt"))
    removed = runner.invoke(knowledge, ["remove", str(x_id), "--home", str(home.path)])
    assert removed.exit_code == 0 and "x.txt" in removed.output
    with KnowledgeIndex.open(home) as index:
        assert search(index, "zebras") == [] and len(search(index, "yaks")) == 1
    missing = runner.invoke(knowledge, ["remove", str(x_id), "--home", str(home.path)])
    assert missing.exit_code != 0 and f"no document with id {x_id}" in str(missing.exception)


# --- bad input -------------------------------------------------------------------------


def test_bad_inputs_are_named_and_the_rest_is_ingested(home, tmp_path):
    good = tmp_path / "docs"
    good.mkdir()
    (good / "ok.md").write_text("# Fine\n\nThe lighthouse keeper is Ada.\n")
    (good / "paper.pdf").write_bytes(text_pdf(["The tide tables are printed yearly"]))
    (good / "locked.pdf").write_bytes(encrypted_pdf("Secret tide data"))
    (good / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (good / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (good / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # another type: skipped, not a problem
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "nowhere.md"
    blob = tmp_path / "data.bin"
    blob.write_bytes(b"\x00\x01\x02")

    result = CliRunner().invoke(
        knowledge,
        ["add", str(good), str(empty), str(missing), str(blob), "--json", "--home", str(home.path)],
    )
    assert result.exit_code == 1  # something could not be indexed, and the command says so
    report = json.loads(result.stdout)
    problems = {Path(p["path"]).name: p["reason"] for p in report["problems"]}
    assert set(problems) == {
        "locked.pdf",
        "broken.pdf",
        "photo.txt",
        "empty",
        "nowhere.md",
        "data.bin",
    }
    assert "encrypted" in problems["locked.pdf"]
    assert "unreadable PDF" in problems["broken.pdf"]
    assert "binary" in problems["photo.txt"]
    assert "no such file" in problems["nowhere.md"]
    assert "holds no" in problems["empty"]
    assert "unsupported file type .bin" in problems["data.bin"]
    assert sorted(Path(p).name for p in report["added"]) == ["ok.md", "paper.pdf"]
    assert [Path(p).name for p in report["skipped"]] == ["image.png"]
    with KnowledgeIndex.open(home) as index:
        assert Path(search(index, "lighthouse keeper")[0].source).name == "ok.md"
        hit = search(index, "tide tables")[0]
        assert Path(hit.source).name == "paper.pdf" and hit.page == 1
        assert search(index, "secret") == []


def test_problems_are_printed_by_name_without_json(home, tmp_path):
    (tmp_path / "good.txt").write_text("Owls hunt at night.")
    result = CliRunner().invoke(
        knowledge,
        ["add", str(tmp_path / "good.txt"), str(tmp_path / "gone.txt"), "--home", str(home.path)],
    )
    assert result.exit_code == 1
    assert "1 added" in result.stdout
    assert f"not indexed: {tmp_path / 'gone.txt'}: no such file or folder" in result.stderr


def test_jsonl_records_are_sections(home, tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(
        json.dumps({"title": "Parking", "text": "Park behind the mill."})
        + "\n"
        + json.dumps({"text": "The shop opens at nine."})
        + "\n"
    )
    chunks = _chunks(path)
    assert [(c.title, c.text) for c in chunks] == [
        ("Parking", "Park behind the mill."),
        ("faq line 2", "The shop opens at nine."),
    ]
