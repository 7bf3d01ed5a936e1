"""Dense packing of documents into chunks of at most `chunk_bytes` bytes.

Documents are joined by a separator and cut without padding. A cut never splits a UTF-8
character; within the last `window` bytes of a chunk it prefers, in order, a newline, a sentence
end (". ", "? ", "! "), a space. The default window (1% of the chunk) keeps every chunk but the
last at least 99% full.
"""
from __future__ import annotations

_SENTENCE_MARKS = b".?!"


def default_window(chunk_bytes: int) -> int:
    return chunk_bytes // 100


def find_cut(buf: bytes | bytearray, start: int, chunk_bytes: int, window: int) -> int:
    """End (exclusive) of the chunk that starts at `start`; needs len(buf) > start + chunk_bytes."""
    end = start + chunk_bytes
    low = max(end - window, start + 1)
    newline = buf.rfind(b"\n", low, end)
    if newline >= 0:
        return newline + 1
    # Every sentence end holds a space: the last space settles most cuts with one more look.
    space = buf.rfind(b" ", low, end)
    if space >= 0:
        if space > low and buf[space - 1] in _SENTENCE_MARKS:
            return space + 1
        if buf.rfind(b" ", low, space) >= 0:
            sentence = max(buf.rfind(b". ", low, space), buf.rfind(b"? ", low, space), buf.rfind(b"! ", low, space))
            if sentence >= 0:
                return sentence + 2
        return space + 1
    cut = end
    while cut > start + 1 and buf[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut


class Packer:
    """Stateful packer of one stream (one split of one source)."""

    def __init__(self, chunk_bytes: int, window: int | None = None, separator: bytes = b"\n"):
        if chunk_bytes < 8:
            raise ValueError("chunk_bytes must be at least 8")
        self.chunk_bytes = chunk_bytes
        self.window = default_window(chunk_bytes) if window is None else window
        self.separator = separator
        self._carry = b""
        self._started = False

    def feed(self, docs: list[bytes]) -> list[bytes]:
        """Append documents; return the chunks that are now complete."""
        if not docs:
            return []
        joined = self.separator.join(docs)
        buf = self._carry + self.separator + joined if self._started else joined
        self._started = True
        chunks = []
        pos = 0
        while len(buf) - pos > self.chunk_bytes:
            cut = find_cut(buf, pos, self.chunk_bytes, self.window)
            chunks.append(buf[pos:cut])
            pos = cut
        self._carry = buf[pos:]
        return chunks

    def finish(self) -> list[bytes]:
        """The last, possibly short, chunk."""
        rest, self._carry = self._carry, b""
        return [rest] if rest else []
