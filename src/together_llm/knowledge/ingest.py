"""`tllm knowledge add PATH...`: find the files under the given paths, and index each one
that is new or changed.

A file is hashed (SHA-256 of its bytes) before it is parsed, so an unchanged file costs a
read and a hash, nothing more. Every path that cannot be used (missing, an empty folder, an
unsupported or unreadable file) becomes a `Problem` naming it, and the other files are
still ingested. Hidden files and folders (".git", ".DS_Store") are passed over silently;
files of other types inside a folder are counted as skipped, not as problems.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import chunk_document
from .documents import MAX_BYTES, UnreadableError, kind_of, read_document
from .index import KnowledgeIndex


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # other file types found in folders
    problems: list[Problem] = field(default_factory=list)
    chunks: int = 0  # chunks written (added and updated documents)
    bytes: int = 0  # bytes read


def collect(paths: list[str | os.PathLike], report: IngestReport) -> list[Path]:
    """The supported files under `paths`, in a stable order, without duplicates."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            report.problems.append(Problem(str(given), "no such file or folder"))
        elif path.is_dir():
            inside = _walk(path, report)
            if not inside:
                report.problems.append(
                    Problem(str(given), "folder holds no .txt, .md, .html, .pdf or .jsonl file")
                )
            found.update(dict.fromkeys(inside))
        elif kind_of(path) is None:
            report.problems.append(
                Problem(str(given), f"unsupported file type {path.suffix or '(none)'}")
            )
        else:
            found[path.resolve()] = None
    return list(found)


def _walk(folder: Path, report: IngestReport) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root, name)
            if kind_of(path) is None:
                report.skipped.append(str(path))
            elif path.is_file():
                files.append(path.resolve())
    return files


def ingest(
    index: KnowledgeIndex,
    paths: list,
    progress: Callable[[int, str | None], None] | None = None,
    max_words: int | None = None,
    overlap: int | None = None,
) -> IngestReport:
    """Index the files under `paths`; `progress(bytes done, note)` is called after each file."""
    report = IngestReport()
    ingest_files(index, collect(paths, report), report, progress, max_words, overlap)
    return report


def total_bytes(files: list[Path]) -> int:
    return sum(_size(path) for path in files)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def ingest_files(
    index: KnowledgeIndex,
    files: list[Path],
    report: IngestReport,
    progress: Callable[[int, str | None], None] | None = None,
    max_words: int | None = None,
    overlap: int | None = None,
) -> None:
    """Index `files` (from `collect`), adding outcomes and problems to `report`."""
    bounds = {k: v for k, v in (("max_words", max_words), ("overlap", overlap)) if v is not None}
    done = 0
    for path in files:
        done += _size(path)
        try:
            _ingest_file(index, path, report, bounds)
        except UnreadableError as exc:
            report.problems.append(Problem(str(path), str(exc)))
        except OSError as exc:
            report.problems.append(Problem(str(path), f"cannot read it: {exc.strerror or exc}"))
        if progress:
            progress(done, path.name)


def _ingest_file(index: KnowledgeIndex, path: Path, report: IngestReport, bounds: dict) -> None:
    if _size(path) > MAX_BYTES:  # refused before reading it into memory
        raise UnreadableError(f"larger than {MAX_BYTES >> 20} MB")
    data = path.read_bytes()
    report.bytes += len(data)
    sha = hashlib.sha256(data).hexdigest()
    source = str(path)
    if index.is_current(source, sha):
        report.unchanged.append(source)
        return
    doc = read_document(path, data)
    chunks = chunk_document(doc, **bounds)
    _, outcome = index.put(source, doc.kind, doc.title, sha, len(data), chunks)
    getattr(report, outcome).append(source)
    if outcome != "unchanged":
        report.chunks += len(chunks)
