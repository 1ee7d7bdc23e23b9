"""Stop strings for local generation, checked at a cost per token that does not grow with the reply.

    cut_at_stop("Paris.\\nQ:", ["\\nQ:"])        -> ("Paris.", True)
    StopStrings(tokenizer, ["\\nQ:"], width).hit(row_ids)   # after each generated token, per row
    cut = StreamCut(["\\nQ:"]); cut.feed(piece) -> the text safe to send now (never part of a stop string)

A stop string first appears in the text when its last character arrives, so each check looks only at the end of
the text: the last few tokens (`StopStrings`) or the last piece plus the longest stop string (`StreamCut`).
transformers' own `StopStringCriteria` was not used: it first scans the whole vocabulary for every stop string
(seconds per string for a 49k-token vocabulary, under the model's lock, so every other request waits) and then
matches all of them on every token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

UTF8_MAX_BYTES = 4  # a byte-level token holds at least one byte of a character of at most 4 bytes


def find_stop(text: str, stop: Sequence[str], start: int = 0) -> int | None:
    """Where the first of `stop` begins in `text[start:]` (as an index of `text`), or None."""
    hits = [i for i in (text.find(s, start) for s in stop) if i >= 0]
    return min(hits) if hits else None


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """`text` up to its first stop string (which is not part of the reply, as with OpenAI), and whether one
    was found."""
    at = find_stop(text, stop or ())
    return (text, False) if at is None else (text[:at], True)


class StopStrings:
    """Whether a generated row ends with one of `stop`, decoding only its last tokens.

    `width` is where generation starts in each row (the padded prompt's length): the prompt never counts. The
    tail is one token more than the longest stop string has characters (a token decodes to at least one
    character), widened to 4 tokens per character when multi-byte characters make it decode shorter."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], width: int):
        self.tokenizer, self.stop, self.width = tokenizer, list(stop), width
        self.longest = max(len(s) for s in self.stop)

    def hit(self, row: Sequence[int]) -> bool:
        """Whether `row` (token ids, a list or a 1-D tensor: only its tail is read) ends with a stop string."""
        new = row[self.width:]
        text = self._tail(new, self.longest + 1)
        if len(text) <= self.longest and len(new) > self.longest + 1:  # multi-byte characters
            text = self._tail(new, UTF8_MAX_BYTES * self.longest + 1)
        return find_stop(text, self.stop) is not None

    def _tail(self, ids: Sequence[int], tokens: int) -> str:
        return self.tokenizer.decode(ids[-tokens:], skip_special_tokens=True)


class StreamCut:
    """A streamed reply's text pieces in, the part that is safe to send out: text that may be the start of a
    stop string is held back, and the reply ends before the first stop string. Each piece is searched with only
    the held-back text before it, never the whole reply."""

    def __init__(self, stop: Sequence[str] | None):
        self.stop = list(stop or ())
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.text = ""
        self.sent = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text to send after `piece` arrived ("" while it is held back or after a stop string)."""
        if self.stopped:
            return ""
        start = max(0, len(self.text) - self.hold)
        self.text += piece
        at = find_stop(self.text, self.stop, start)
        self.stopped = at is not None
        end = at if at is not None else max(self.sent, len(self.text) - self.hold)
        return self._send(end)

    def flush(self) -> str:
        """What is still held back once the reply has ended without a stop string."""
        return "" if self.stopped else self._send(len(self.text))

    @property
    def reply(self) -> str:
        """The whole reply, up to its stop string."""
        return self.text[:self.sent] if self.stopped else self.text

    def _send(self, end: int) -> str:
        out = self.text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return out
