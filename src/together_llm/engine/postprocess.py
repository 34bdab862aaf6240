"""Turning generated tokens into the text a user sees, the same way on every engine.

Two steps, both streaming:
1. `Detokenizer` turns token ids into text pieces without splitting a multi-byte character
   (it re-decodes a short window and waits while the tail is an incomplete character).
2. `OutputFilter` trims the answer: it cuts at the first stop sequence (holding back text
   that could be the start of one), removes special-token text that leaked through, turns
   CRLF into LF and drops leading and trailing whitespace of the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT = "\ufffd"


class Detokenizer:
    """Incremental detokenization: feed ids one at a time, get the new text each brings.

    `decode(ids)` must decode a list of ids to text with special tokens skipped. Decoding a
    window that starts a few tokens back keeps tokenizers that merge spaces across tokens
    (SentencePiece's leading "▁") correct, at a cost independent of answer length.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]):
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # window start: text before it has been emitted and is settled
        self._read = 0  # ids up to here have been emitted

    def feed(self, token_id: int) -> str:
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if after.endswith(REPLACEMENT) or len(after) <= len(before):
            return ""  # an incomplete character, or a token that renders as nothing yet
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]


class OutputFilter:
    """Stop sequences, leaked special tokens and whitespace, applied to a stream of text."""

    def __init__(
        self, stop: Sequence[str] = (), special_texts: Sequence[str] = (), trim: bool = True
    ):
        self.stop = [s for s in stop if s]
        self.special = [s for s in special_texts if s]
        self.trim = trim  # drop outer whitespace (answers); raw completions keep it
        self._pending = ""
        self._started = False  # leading whitespace of the answer is dropped until text starts
        self.stopped = False

    def _clean(self, text: str) -> str:
        text = text.replace("\r\n", "\n")
        for special in self.special:
            text = text.replace(special, "")
        return text

    def _holdback(self, text: str) -> int:
        """How many trailing characters might begin a stop sequence or special token."""
        longest = 0
        for marker in self.stop + self.special:
            for k in range(min(len(marker) - 1, len(text)), longest, -1):
                if text.endswith(marker[:k]):
                    longest = k
                    break
        return longest

    def _emit(self, text: str) -> str:
        if self.trim and not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text

    def feed(self, piece: str) -> str:
        """Add a piece; return the text now safe to show. Sets `stopped` at a stop sequence."""
        if self.stopped:
            return ""
        self._pending = self._clean(self._pending + piece)
        cuts = [i for i in (self._pending.find(s) for s in self.stop) if i >= 0]
        if cuts:
            self.stopped = True
            text, self._pending = self._pending[: min(cuts)], ""
            text = text.rstrip() if self.trim else text
            return self._emit(text)
        end = len(self._pending) - self._holdback(self._pending)
        while self.trim and end > 0 and self._pending[end - 1].isspace():
            end -= 1  # trailing whitespace waits: it is dropped if the answer ends here
        text, self._pending = self._pending[:end], self._pending[end:]
        return self._emit(text)

    def finish(self) -> str:
        """The rest of the answer once generation has ended."""
        text, self._pending = self._pending, ""
        text = text.rstrip() if self.trim else text
        return "" if self.stopped else self._emit(text)
