"""Dense packing of documents into chunks of at most `chunk_bytes` bytes, and the options of the
packing stage (`PackOptions`).

Documents are joined by a separator and cut without padding. A cut never splits a UTF-8
character; within the last `window` bytes of a chunk it prefers, in order, a newline, a sentence
end (". ", "? ", "! "), a space. The default window (1% of the chunk) keeps every chunk but the
last at least 99% full.
"""
from __future__ import annotations

from dataclasses import dataclass

_SENTENCE_MARKS = b".?!"


@dataclass(frozen=True)
class PackOptions:
    """How documents become shards: chunk size and cut window, the separator, the validation
    draw (a fraction of documents or an exact count; a small corpus's fraction topped up to
    `min_val_docs`, see data_prep/validation_size.py), and rows per shard file."""

    chunk_bytes: int = 1024
    cut_window: int | None = None
    separator: bytes = b"\n"
    val_fraction: float = 0.0
    val_docs: int | None = None
    shard_rows: int = 131072
    min_val_docs: int = 0


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


@dataclass(frozen=True)
class Chunks:
    """Consecutive chunks kept as one buffer and their boundaries: chunk i is
    `buffer[bounds[i]:bounds[i + 1]]`. The assembler and the shard writer pass these on without
    making a bytes object per chunk (a 1 GB corpus is a million chunks)."""

    buffer: bytes
    bounds: list[int]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def nbytes(self) -> int:
        return self.bounds[-1] - self.bounds[0]

    def split(self, count: int) -> tuple[Chunks, Chunks]:
        """(the first `count` chunks, the rest)."""
        count = min(count, len(self))
        return Chunks(self.buffer, self.bounds[:count + 1]), Chunks(self.buffer, self.bounds[count:])

    def to_list(self) -> list[bytes]:
        return [self.buffer[a:b] for a, b in zip(self.bounds, self.bounds[1:])]


NO_CHUNKS = Chunks(b"", [0])


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

    def feed(self, docs: list[bytes]) -> Chunks:
        """Append documents; return the chunks that are now complete."""
        if not docs:
            return NO_CHUNKS
        # One join makes carry + separator + documents (a separate join and concatenation would
        # copy every byte twice).
        buf = self.separator.join([self._carry, *docs] if self._started else docs)
        self._started = True
        bounds = [0]
        pos = 0
        limit = len(buf) - self.chunk_bytes
        while pos < limit:
            pos = find_cut(buf, pos, self.chunk_bytes, self.window)
            bounds.append(pos)
        self._carry = buf[pos:]
        return Chunks(buf, bounds)

    def finish(self) -> Chunks:
        """The last, possibly short, chunk."""
        rest, self._carry = self._carry, b""
        return Chunks(rest, [0, len(rest)]) if rest else NO_CHUNKS
