"""Reading a document file into plain text with its structure: `Document.text` is the text
the chunks quote, and `Document.sections` are titled spans of it (a heading's body, a PDF
page, a JSONL record), so chunks never straddle a heading or a page.

Supported: .txt, .md/.markdown, .html/.htm, .pdf (pypdf, imported only for PDFs) and
.jsonl (one section per record with a "text" field). Character offsets point into
`Document.text`: for .txt and .md that is the file itself, for HTML the extracted text,
for PDFs the pages' text joined by blank lines.

Anything that cannot be read raises `UnreadableError` with a reason a user can act on;
the caller reports it by file name and goes on with the other files.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..errors import TllmError

SUFFIXES = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}
MAX_BYTES = 64 << 20  # a bigger "document" is almost surely not one


class UnreadableError(TllmError):
    """This file cannot be ingested; the message says why."""


@dataclass
class Section:
    """A titled span [start, end) of `Document.text`; `page` counts from 1 (PDFs only)."""

    title: str
    start: int
    end: int
    page: int | None = None


@dataclass
class Document:
    kind: str
    title: str
    text: str
    sections: list[Section] = field(default_factory=list)


def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def read_document(path: Path, data: bytes) -> Document:
    """Parse `data`, the bytes of `path` (read once by the caller, which also hashes them)."""
    kind = kind_of(path)
    if kind is None:
        raise UnreadableError(
            f"unsupported file type {path.suffix or '(none)'}; "
            f"supported: {', '.join(sorted(SUFFIXES))}"
        )
    if len(data) > MAX_BYTES:
        raise UnreadableError(f"larger than {MAX_BYTES >> 20} MB")
    if kind == "pdf":
        doc = _read_pdf(path, data)
    else:
        text = _decode(data)
        doc = {"txt": _read_txt, "md": _read_md, "html": _read_html, "jsonl": _read_jsonl}[kind](
            path, text
        )
    if not doc.text.strip():
        raise UnreadableError("no text in it")
    return doc


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableError("binary content, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableError(
            f"not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None


def _read_txt(path: Path, text: str) -> Document:
    return Document("txt", path.stem, text, [Section(path.stem, 0, len(text))])


# --- Markdown: ATX (#) and setext (=== / ---) headings, ignoring those inside code fences ---

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")

Heading = tuple[int, str, int, int]  # (level, title, line start, body start)


def _read_md(path: Path, text: str) -> Document:
    headings: list[Heading] = []
    lines = text.splitlines(keepends=True)
    offset, in_fence, previous = 0, False, None  # previous: (start, text) of the last line
    for line in lines:
        stripped = line.rstrip("\r\n")
        if _FENCE.match(stripped):
            in_fence = not in_fence
        elif not in_fence:
            atx = _ATX.match(stripped)
            setext = _SETEXT.match(stripped)
            if atx:
                headings.append(
                    (len(atx.group(1)), atx.group(2).strip(), offset, offset + len(line))
                )
            elif setext and previous and previous[1].strip() and not _ATX.match(previous[1]):
                level = 1 if setext.group(1)[0] == "=" else 2
                headings.append((level, previous[1].strip(), previous[0], offset + len(line)))
        previous = (offset, stripped)
        offset += len(line)
    return Document(
        "md", _first_title(headings, path), text, _sections_from_headings(text, headings, path.stem)
    )


def _first_title(headings: list[Heading], path: Path) -> str:
    top = [h for h in headings if h[0] == 1]
    first = (top or headings)[:1]
    return first[0][1] if first else path.stem


def _sections_from_headings(text: str, headings: list[Heading], untitled: str) -> list[Section]:
    """One section per heading body, titled with the heading path ("Guide > Install"); text
    before the first heading is a section of its own."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # (level, title) of the headings this one sits under
    first = headings[0][2] if headings else len(text)
    if text[:first].strip():
        sections.append(Section(untitled, 0, first))
    for i, (level, title, _, body) in enumerate(headings):
        stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
        end = headings[i + 1][2] if i + 1 < len(headings) else len(text)
        path = " > ".join(t for _, t in stack)
        sections.append(Section(path, body, max(body, end)))
    return sections


# --- HTML: headings start sections, block elements break paragraphs, scripts are dropped ---

_BLOCKS = {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "pre",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "br",
    "hr",
    "dd",
    "dt",
    "figcaption",
    "form",
}
_HIDDEN = {"script", "style", "noscript", "template", "svg", "head"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.hidden = 0
        self.title = ""
        self.in_title = False
        self.heading: tuple[int, list[str], int] | None = None  # level, words so far, start
        self.headings: list[Heading] = []  # as in Markdown

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def _break(self) -> None:
        if self.parts and not "".join(self.parts[-2:]).endswith("\n\n"):
            self._emit("\n\n")

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _HEADINGS:
            self._break()
            self.heading = (_HEADINGS[tag], [], self.size)
        elif tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _HEADINGS and self.heading:
            level, words, start = self.heading
            self.heading = None
            self._break()
            self.headings.append((level, " ".join(" ".join(words).split()), start, self.size))
        elif tag in _BLOCKS:
            self._break()

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.hidden:
            return
        text = re.sub(r"\s+", " ", data)
        if not text.strip():
            return
        if self.parts and self.parts[-1].endswith("\n\n"):
            text = text.lstrip()
        if self.heading:
            self.heading[1].append(text)
        self._emit(text)


def _read_html(path: Path, text: str) -> Document:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    body = "".join(parser.parts)
    headings = [h for h in parser.headings if h[1]]
    title = " ".join(parser.title.split()) or _first_title(headings, path)
    return Document("html", title, body, _sections_from_headings(body, headings, title))


# --- PDF: one section per page ---


def _read_pdf(path: Path, data: bytes) -> Document:

    # pypdf logs each repair it attempts on a damaged file; the one line that matters is the
    # problem reported by file name below.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:  # many "encrypted" PDFs have an empty user password and open for anyone
                opened = reader.decrypt("")
            except Exception as exc:
                raise UnreadableError(f"encrypted PDF that cannot be opened ({exc})") from None
            if not opened:
                raise UnreadableError(
                    "encrypted PDF (it needs a password); save an unencrypted copy"
                )
        metadata = reader.metadata  # None when the PDF has no document information
        title = str(metadata.get("/Title") or "") if metadata else ""
        title = title.strip() or path.stem
        parts: list[str] = []
        sections: list[Section] = []
        offset = 0
        for number, page in enumerate(reader.pages, start=1):
            page_text = (page.extract_text() or "").strip()
            if not page_text:
                continue
            if parts:
                parts.append("\n\n")
                offset += 2
            parts.append(page_text)
            sections.append(Section(title, offset, offset + len(page_text), page=number))
            offset += len(page_text)
    except UnreadableError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableError(f"unreadable PDF ({exc})") from None
    if not sections:
        raise UnreadableError("PDF without extractable text (a scan? run OCR on it first)")
    return Document("pdf", title, "".join(parts), sections)


# --- JSON Lines: one section per record's "text" ---


def _read_jsonl(path: Path, text: str) -> Document:
    parts: list[str] = []
    sections: list[Section] = []
    bad: list[int] = []  # numbers of the lines without a "text" string
    offset = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        body = record.get("text") if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            bad.append(number)
            continue
        title = record.get("title")
        title = (
            title.strip()
            if isinstance(title, str) and title.strip()
            else f"{path.stem} line {number}"
        )
        if parts:
            parts.append("\n\n")
            offset += 2
        parts.append(body)
        sections.append(Section(title, offset, offset + len(body)))
        offset += len(body)
    if not sections:
        raise UnreadableError('no JSON line with a non-empty "text" field')
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        raise UnreadableError(
            f'{len(bad)} line(s) without a "text" string (lines {shown}); fix or drop them'
        )
    return Document("jsonl", path.stem, "".join(parts), sections)
