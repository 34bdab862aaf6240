"""Putting retrieved chunks into a prompt, and finding which of them an answer cites.

The chunks go into the user's turn, not the system prompt, as quoted data inside a
`<sources>` ... `</sources>` fence, each numbered ([1] title (file)) and every one of its
lines quoted with "> ". The question comes after the sources: the last thing a small model
reads before it answers. (Measured on the bundled SmolLM2-135M, ten corpus questions: a
fence carrying a random nonce lost one or two answers, because the model read the nonce
back as "the source number"; the fence below is safe without one.)

Retrieved text is someone's document, so it is treated as hostile:
- it cannot close the fence: no chunk line starts a line of the prompt (each is quoted,
  after splitting on every kind of line break), and tag-like text in it, `</sources>`
  included, is broken as below;
- it cannot pose as a turn of the conversation: chat-template control tokens
  (`<|im_start|>`, `<|eot_id|>`, `<s>`, `[INST]`, `<start_of_turn>`...) and anything shaped
  like a tag have their first character replaced by a look-alike (U+2039 for "<", U+FF3B for
  "["), so the tokenizer reads plain text and the rendered template keeps its own turns only.

`cited_sources` maps an answer's [n] markers to the sources. Small models rarely write the
markers (the bundled one wrote them in 0 to 1 answers of 10), so a source also counts as
cited when the answer quotes a distinctive run of its words; `cited_by` says which it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .search import Hit

INSTRUCTION = "Answer the question from the sources above, and cite the source like [1]."

# Chat-template control tokens of the common families, and anything shaped like one.
_CONTROL = re.compile(
    r"<\|[^|<>\n]{0,40}\|>"  # <|im_start|>, <|eot_id|>, <|start_header_id|>
    r"|</?(?:s|unk|pad|bos|eos|mask)>"  # <s>, </s>, <unk>...
    r"|</?[a-z][a-z_]{2,30}>"  # <start_of_turn>, <repo_name>, <file_sep>
    r"|\[/?(?:INST|SYS)\]|<</?SYS>>",  # Llama 2
    re.IGNORECASE,
)
_LOOKALIKE = {"<": "\u2039", "[": "\uff3b"}
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = re.compile(r"\w+")
QUOTE_WORDS = 3  # a run of this many words, one of them distinctive, counts as a quote


def neutralize(text: str) -> str:
    """`text` with every chat-template control token broken into inert look-alike text."""
    return _CONTROL.sub(lambda m: _LOOKALIKE.get(m.group(0)[0], "") + m.group(0)[1:], text)


@dataclass
class Source:
    """One retrieved chunk as numbered in the prompt."""

    id: int
    hit: Hit
    cited_by: str | None = None  # "marker" ([n] in the answer), "quote" (its words), or None

    def to_dict(self) -> dict:
        hit = self.hit
        return {
            "id": self.id,
            "source": hit.source,
            "title": hit.title or hit.document_title,
            "page": hit.page,
            "chunk": hit.text,
            "score": round(hit.score, 4),
            "document_id": hit.document_id,
            "chunk_id": hit.chunk_id,
            "cited_by": self.cited_by,
        }

    def label(self) -> str:
        hit = self.hit
        page = f", page {hit.page}" if hit.page else ""
        return f"[{self.id}] {hit.title or hit.document_title} ({_name(hit.source)}{page})"


def _name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def render_sources(sources: list[Source]) -> str:
    """The fenced block of numbered, quoted sources."""
    lines = ["<sources>"]
    for source in sources:
        lines.append(" ".join(neutralize(source.label()).split()))  # one line, whatever the title
        lines.extend(
            "> " + line for line in neutralize(source.hit.text).splitlines() if line.strip()
        )
    lines.append("</sources>")
    return "\n".join(lines)


def augment(question: str, hits: list[Hit]) -> tuple[str, list[Source]]:
    """The user turn with knowledge: the sources, the instruction, then the question.
    Returns the text and the numbered sources; without hits, the question unchanged."""
    sources = [Source(n, hit) for n, hit in enumerate(hits, start=1)]
    if not sources:
        return question, []
    return f"{render_sources(sources)}\n\n{INSTRUCTION}\nQuestion: {question}", sources


def augment_messages(messages: list[dict], hits: list[Hit]) -> tuple[list[dict], list[Source]]:
    """`messages` with their last user turn augmented (a copy; earlier turns untouched)."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None:
        return list(messages), []
    text, sources = augment(messages[last]["content"], hits)
    changed = list(messages)
    changed[last] = {**messages[last], "content": text}
    return changed, sources


def cited_sources(answer: str, sources: list[Source], question: str = "") -> list[Source]:
    """The sources `answer` cites, in id order: those it names by an [n] marker, and those
    whose words it quotes: a run of QUOTE_WORDS words of the source holding a word that
    neither another source nor the question has (repeating the question proves nothing).
    Marks each source's `cited_by`."""
    by_id = {s.id: s for s in sources}
    for source in sources:
        source.cited_by = None
    for match in _CITATION.finditer(answer):
        for number in re.split(r"\s*,\s*", match.group(1)):
            if int(number) in by_id:
                by_id[int(number)].cited_by = "marker"
    answer_words = _words(_CITATION.sub(" ", answer))
    for source in [s for s in sources if s.cited_by is None]:
        if _quotes(answer_words, source, sources, set(_words(question))):
            source.cited_by = "quote"
    return [s for s in sources if s.cited_by]


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


_COMMON = frozenset(
    """
a an and are as at be by for from has have he her his in is it its of on or our she that the
their they this to was we were with which who what when where how not no do does did can will
answer source sources question cite know""".split()
)


def _quotes(answer_words: list[str], source: Source, sources: list[Source], others: set) -> bool:
    """True when the answer repeats a run of QUOTE_WORDS of the source's words that holds
    a word absent from `others` and the other sources (so "of the cooperative" is no proof)."""
    own = _words(source.hit.text)
    others = set(others)
    for other in sources:
        if other is not source:
            others.update(_words(other.hit.text))
    distinctive = {w for w in own if w not in others and w not in _COMMON}
    runs = {tuple(own[i : i + QUOTE_WORDS]) for i in range(len(own) - QUOTE_WORDS + 1)}
    for i in range(len(answer_words) - QUOTE_WORDS + 1):
        run = tuple(answer_words[i : i + QUOTE_WORDS])
        if run in runs and any(w in distinctive for w in run):
            return True
    return False


def format_sources(sources: list[Source]) -> str:
    """The lines the CLI prints after an answer."""
    lines = ["Sources:"]
    for source in sources:
        hit = source.hit
        page = f", page {hit.page}" if hit.page else ""
        how = "" if source.cited_by == "marker" else "  (quoted; the model gave no number)"
        lines.append(f"  [{source.id}] {hit.title or hit.document_title}: {hit.source}{page}{how}")
    return "\n".join(lines)
