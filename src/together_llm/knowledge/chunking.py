"""Cutting a document's sections into chunks small enough to put several in a prompt.

A chunk never crosses a section (a heading's body, a PDF page). Inside a section it holds
whole paragraphs where they fit, else whole sentences, else a hard cut at the bound, and
the next chunk repeats the last `overlap` words (moved forward to a sentence start) so a
fact on a boundary is whole in one of them.

Sizes are counted in words, not model tokens: tokenizing needs the model (a GGUF file or
a transformers directory) loaded just to ingest, and the index must not depend on which
model the home uses today. English runs about 1.3 tokens a word for the usual BPE
vocabularies, so the default of 180 words stays near 240 tokens: five chunks fit a
2,048-token context with room for the question and the answer.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .documents import Document, Section

MAX_WORDS = 180
OVERLAP_WORDS = 30

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?:;][\"')\]]*(?!\S)")  # ends a word
_BLANK_LINE = re.compile(r"\n\r*\n")


@dataclass
class Chunk:
    text: str
    title: str
    page: int | None
    start: int  # character offsets into Document.text
    end: int


def chunk_document(
    doc: Document, max_words: int = MAX_WORDS, overlap: int = OVERLAP_WORDS
) -> list[Chunk]:
    if max_words < 1 or not 0 <= overlap < max_words:
        raise ValueError("need max_words >= 1 and 0 <= overlap < max_words")
    chunks = []
    for section in doc.sections:
        chunks.extend(_chunk_section(doc.text, section, max_words, overlap))
    return chunks


def _chunk_section(text: str, section: Section, max_words: int, overlap: int) -> list[Chunk]:
    words = [m.span() for m in _WORD.finditer(text, section.start, section.end)]
    if not words:
        return []
    # Found by scanning the section once rather than testing each word (twice as fast to
    # ingest): a paragraph ends after word i when a blank line follows it, a sentence where
    # a word ends in sentence punctuation.
    ends = [e for _, e in words]
    paragraph_end = set()
    for blank in _BLANK_LINE.finditer(text, section.start, section.end):
        i = bisect.bisect_right(ends, blank.start()) - 1
        if 0 <= i < len(words) - 1:
            paragraph_end.add(i)
    punctuated = {m.end() for m in _SENTENCE_END.finditer(text, section.start, section.end)}
    sentence_end = {i for i, e in enumerate(ends) if e in punctuated}
    chunks, first = [], 0
    while True:
        last = min(first + max_words, len(words)) - 1  # inclusive index of the chunk's last word
        if last < len(words) - 1:
            last = _best_cut(first, last, paragraph_end, sentence_end, max_words)
        start, end = words[first][0], words[last][1]
        chunks.append(Chunk(text[start:end], section.title, section.page, start, end))
        if last == len(words) - 1:
            return chunks
        first = _next_start(first, last, overlap, sentence_end)


def _best_cut(first: int, last: int, paragraph_end: set, sentence_end: set, max_words: int) -> int:
    """The latest paragraph end in the second half of the window, else sentence end, else `last`."""
    floor = first + max_words // 2
    for boundaries in (paragraph_end, sentence_end):
        for i in range(last, floor - 1, -1):
            if i in boundaries:
                return i
    return last


def _next_start(first: int, last: int, overlap: int, sentence_end: set) -> int:
    """Back up `overlap` words from the cut, then forward to the first sentence start
    inside that overlap, so chunks begin at a sentence where one is near."""
    start = max(first + 1, last + 1 - overlap)
    for i in range(start, last + 1):
        if i - 1 in sentence_end:
            return i
    return start
