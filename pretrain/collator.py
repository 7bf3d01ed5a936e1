"""T5 span-corruption collator for raw byte chunks, vectorised over the batch.

Semantics are seqio's `random_spans_noise_mask` + `noise_span_to_unique_sentinel` with the byte
vocabulary (DESIGN.md sections 2 and 3). Randomness is counter-based: every random key is a
splitmix64 hash of (seed, sample_id, stream, position), so an example's corruption is a pure
function of (seed, sample_id, chunk) whatever batch or DataLoader worker it lands in.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from pretrain.byte_vocab import BYTE_OFFSET, EOS_ID, FIRST_SENTINEL_ID, MAX_SAFE_SENTINELS, PAD_ID, noise_counts_array

LABEL_PAD = -100
DECODER_START_ID = PAD_ID  # T5's decoder_start_token_id

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LAYOUT_CACHE = 256  # distinct chunk-length vectors remembered (full chunks: one)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on a uint64 (or int64) array, wrapping.

    Arrays only: on NumPy scalars the same arithmetic would warn about overflow.
    """
    z = z.astype(np.uint64, copy=False)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def counter_offsets(counter: np.ndarray) -> np.ndarray:
    """What `keyed_hash` adds to the key for each counter; callers that hash many keys with the
    same counters compute it once."""
    return (counter.astype(np.uint64) + np.uint64(1)) * _GAMMA


def keyed_hash(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Counter-based random uint64s: splitmix64 of key + (counter + 1) * gamma (arrays, broadcasting)."""
    return splitmix64(key + counter_offsets(counter))


def span_counts(lengths: np.ndarray, noise_density: float, mean_noise_span_length: float) -> tuple[np.ndarray, np.ndarray]:
    """(num_noise, num_spans) per chunk length: `byte_vocab.noise_counts_array`, except that

    lengths below 2 get no noise at all: seqio pads the length to 2, puts the single noise
    byte last, then cuts the mask back to the original length.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    num_noise, num_spans = noise_counts_array(lengths, noise_density, mean_noise_span_length)
    short = lengths < 2
    return np.where(short, 0, num_noise), np.where(short, 0, num_spans)


def seed_key(seed: int) -> np.ndarray:
    """The uint64 key every counter-based draw of a seed starts from."""
    return splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))


class _Layout:
    """Everything about a batch that depends on its chunk lengths only (cached per length vector)."""

    def __init__(self, collator: SpanCorruptionCollator, lengths: np.ndarray, raw_width: int) -> None:
        rows = len(lengths)
        self.num_noise, self.num_spans = collator.check_lengths(lengths)
        # Both segmentations at once: rows [0, n) split the noise, rows [n, 2n) the rest.
        self.items = np.concatenate([self.num_noise, lengths - self.num_noise])
        cuts = np.maximum(np.concatenate([self.num_spans, self.num_spans]) - 1, 0)
        self.kmax = int(cuts.max(initial=0))
        self.step = np.arange(self.kmax)
        # Random-number counters per example: noise cut i uses i, non-noise cut i uses 2**32 + i,
        # whatever the batch's widest row, so a row's draws do not depend on its batch.
        self.counter_offsets = counter_offsets(np.concatenate([self.step, self.step + 2**32]))
        self.top = (self.items - 1 - cuts)[:, None] + self.step  # Floyd's range top per step
        self.top_span = np.maximum(self.top + 1, 1).astype(np.uint64)
        self.unused = self.step >= cuts[:, None]
        self.past_end = self.items[:, None] + self.step
        self.earlier = np.tri(self.kmax, k=-1, dtype=bool)
        self.input_lengths = lengths - self.num_noise + self.num_spans + 1
        self.target_lengths = self.num_noise + self.num_spans + 1
        self.input_width = collator._width(self.input_lengths, collator.pad_inputs_to, "inputs")
        self.target_width = collator._width(self.target_lengths, collator.pad_targets_to, "targets")
        self.table = _Table(rows * raw_width, self.input_width, self.target_width)
        self.row_start = (np.arange(rows) * raw_width)[:, None]
        spans = self.kmax + 1
        live = (np.arange(spans) < self.num_spans[:, None]).astype(np.int64)
        sentinels = self.table.sentinel + np.arange(spans)
        # Piece templates; the random columns are filled in per batch.
        # inputs: keep_0 S_0 keep_1 S_1 ... EOS pad;  targets: S_0 noise_0 S_1 noise_1 ... EOS pad.
        self.input_pieces = self._template(rows, sentinels, live, 1, self.table.input_pad, self.input_width - self.input_lengths)
        self.target_pieces = self._template(rows, sentinels, live, 0, self.table.label_pad, self.target_width - self.target_lengths)
        self.input_arange = np.arange(rows * self.input_width)
        self.target_arange = np.arange(rows * self.target_width)
        self.attention_mask = (np.arange(self.input_width) < self.input_lengths[:, None]).astype(np.int64)
        self.decoder_attention_mask = (np.arange(self.target_width) < self.target_lengths[:, None]).astype(np.int64)

    def _template(self, rows: int, sentinels: np.ndarray, live: np.ndarray, sentinel_column: int, pad: int,
                  pad_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(table starts, lengths) per piece: sentinels in every other column, then EOS, padding."""
        starts = np.zeros((rows, 2 * live.shape[1] + 2), dtype=np.int64)
        lengths = np.zeros_like(starts)
        starts[:, sentinel_column:-2:2], lengths[:, sentinel_column:-2:2] = sentinels, live
        starts[:, -2], lengths[:, -2] = self.table.eos, 1
        starts[:, -1], lengths[:, -1] = pad, pad_lengths
        return starts, lengths


class _Table:
    """Layout of the gather table: the batch's byte ids, every sentinel, EOS, then two paddings.

    Each output row is a list of pieces, each a run of consecutive table entries, so a whole
    side of the batch is one np.repeat (piece start per position) plus one take.
    """

    def __init__(self, raw_size: int, inputs_width: int, targets_width: int) -> None:
        self.sentinel = raw_size  # sentinel k at sentinel + k (id 258 - k)
        self.eos = self.sentinel + FIRST_SENTINEL_ID - BYTE_OFFSET + 1
        self.input_pad = self.eos + 1
        self.label_pad = self.input_pad + inputs_width
        self.suffix = np.concatenate([
            np.arange(FIRST_SENTINEL_ID, BYTE_OFFSET - 1, -1, dtype=np.int16),
            np.array([EOS_ID], dtype=np.int16),
            np.full(inputs_width, PAD_ID, dtype=np.int16),
            np.full(targets_width, LABEL_PAD, dtype=np.int16),
        ])

    def fill(self, raw: np.ndarray) -> np.ndarray:
        table = np.empty(raw.size + self.suffix.size, dtype=np.int16)
        np.add(raw.reshape(-1), BYTE_OFFSET, out=table[: raw.size], dtype=np.int16)
        table[raw.size :] = self.suffix
        return table


def _segment_starts(bits: np.ndarray, layout: _Layout) -> np.ndarray:
    """Starts of a uniform random composition of items into num_spans non-empty parts, per row.

    seqio shuffles num_spans - 1 ones among the items - 1 gaps between items, i.e. cuts at a
    uniform random subset of the gaps. The subset is drawn with Floyd's algorithm (for top in
    n-k .. n-1: draw t uniform in [0, top], take top instead if t is already chosen) from the
    (rows, kmax) random uint64 `bits`. Returns (rows, kmax + 2) int64: 0, the sorted cuts + 1,
    then the row's item count repeated to fill the row.
    """
    # Lemire's multiply-shift: uniform in [0, top] up to a relative bias below top / 2**32.
    draws = (((bits >> np.uint64(32)) * layout.top_span) >> np.uint64(32)).astype(np.int64)
    # Unused steps get distinct values past the last gap, which sort last and clip to the count.
    cuts = np.where(layout.unused, layout.past_end, draws)
    ordered = np.sort(cuts, axis=1)
    # Without equal draws in a row no step ever finds its draw taken, so the cuts are the draws.
    clash = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if clash.size:
        settled = _floyd_collisions(draws[clash], layout.top[clash], layout.earlier)
        ordered[clash] = np.sort(np.where(layout.unused[clash], layout.past_end[clash], settled), axis=1)
    starts = np.empty((len(bits), layout.kmax + 2), dtype=np.int64)
    starts[:, 0] = 0
    np.minimum(ordered + 1, layout.items[:, None], out=starts[:, 1:-1])
    starts[:, -1] = layout.items
    return starts


def _floyd_collisions(draws: np.ndarray, top: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """Floyd's choices for rows whose draws repeat: top wherever the draw was already chosen.

    Step i depends on steps < i only, so iterating to a fixed point reproduces the sequential
    algorithm, usually in two or three rounds.
    """
    chosen = draws
    while True:
        taken = ((chosen[:, None, :] == draws[:, :, None]) & earlier).any(axis=2)
        settled = np.where(taken, top, draws)
        if not (settled != chosen).any():
            return settled
        chosen = settled


def _assemble(table: np.ndarray, starts: np.ndarray, lengths: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(rows, width) int64 from per-row pieces (table start, length) that fill each row exactly."""
    lengths = lengths.reshape(-1)
    out_starts = np.cumsum(lengths) - lengths  # rows are filled exactly, so flat positions line up
    index = np.repeat(starts.reshape(-1) - out_starts, lengths)
    index += positions
    return table.take(index).astype(np.int64).reshape(starts.shape[0], -1)


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """NumPy batch -> torch batch without copying."""
    return {name: torch.from_numpy(array) for name, array in arrays.items()}


def pad_chunks(chunks: Sequence[bytes | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Byte chunks (bytes or uint8 arrays) -> (rows, longest) zero-padded uint8 array and lengths."""
    lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
    flat = np.frombuffer(b"".join(chunks), dtype=np.uint8)  # any contiguous buffer; no per-row copy
    if flat.size != lengths.sum():
        raise ValueError("chunks must be bytes or 1-D uint8 arrays")
    return pad_rows(flat, lengths), lengths


def pad_rows(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated rows -> (rows, longest) zero-padded array (a free reshape when all are equal)."""
    width = int(lengths.max(initial=0))
    if (lengths == width).all():
        return flat.reshape(len(lengths), width)
    raw = np.zeros((len(lengths), width), dtype=flat.dtype)
    raw[np.arange(width) < lengths[:, None]] = flat  # row-major order = concatenation order
    return raw


def content_ids(chunks: Sequence[bytes | np.ndarray]) -> np.ndarray:
    """A 63-bit BLAKE2b id per chunk: the default sample id, so corruption depends on content only."""
    return np.fromiter(map(_content_id, chunks), dtype=np.int64, count=len(chunks))


def _content_id(chunk: bytes | np.ndarray) -> int:
    return int.from_bytes(hashlib.blake2b(chunk, digest_size=8).digest(), "little") >> 1


class SpanCorruptionCollator:
    """Turns raw byte chunks into T5 span-corruption batches (input_ids, labels, masks).

    `sample_ids` identify examples for the random streams: the data stream passes a unique
    global draw index, so a chunk seen twice is corrupted differently. Without ids, each chunk's
    id is a hash of its bytes.
    """

    def __init__(
        self,
        noise_density: float = 0.15,
        mean_noise_span_length: float = 20.0,
        seed: int = 0,
        allow_sentinel_collisions: bool = False,
        pad_inputs_to: int | None = None,
        pad_targets_to: int | None = None,
    ) -> None:
        if not 0.0 < noise_density < 1.0:
            raise ValueError(f"noise_density must lie in (0, 1), got {noise_density}")
        if mean_noise_span_length < 1.0:
            raise ValueError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}")
        self.noise_density = float(noise_density)
        self.mean_noise_span_length = float(mean_noise_span_length)
        self.seed = int(seed)
        self.allow_sentinel_collisions = bool(allow_sentinel_collisions)
        self.pad_inputs_to = pad_inputs_to
        self.pad_targets_to = pad_targets_to
        self._seed_key = seed_key(self.seed)
        self._layouts: dict[tuple[int, bytes], _Layout] = {}

    def check_lengths(self, lengths: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(num_noise, num_spans) for these chunk lengths; raises if the settings cannot corrupt them."""
        lengths = np.asarray(lengths, dtype=np.int64)
        num_noise, num_spans = span_counts(lengths, self.noise_density, self.mean_noise_span_length)
        if lengths.size == 0:
            return num_noise, num_spans
        worst = int(np.argmax(num_spans))
        if num_spans[worst] > MAX_SAFE_SENTINELS and not self.allow_sentinel_collisions:
            raise ValueError(
                f"a {lengths[worst]}-byte chunk gets {num_spans[worst]} noise spans "
                f"(noise_density={self.noise_density}, mean_noise_span_length={self.mean_noise_span_length}), "
                f"but only {MAX_SAFE_SENTINELS} sentinels ({FIRST_SENTINEL_ID}..{FIRST_SENTINEL_ID - MAX_SAFE_SENTINELS + 1}) "
                "cannot collide with UTF-8 bytes; use shorter chunks, a longer mean span, or "
                "allow_sentinel_collisions=True"
            )
        if num_spans[worst] > FIRST_SENTINEL_ID - BYTE_OFFSET + 1:
            raise ValueError(
                f"a {lengths[worst]}-byte chunk gets {num_spans[worst]} noise spans, more than the "
                f"{FIRST_SENTINEL_ID - BYTE_OFFSET + 1} byte ids sentinels can take"
            )
        too_many = num_spans > lengths - num_noise
        if too_many.any():
            bad = int(np.argmax(too_many))
            raise ValueError(
                f"a {lengths[bad]}-byte chunk has {lengths[bad] - num_noise[bad]} non-noise bytes for "
                f"{num_spans[bad]} spans (noise_density={self.noise_density}, "
                f"mean_noise_span_length={self.mean_noise_span_length}); seqio cannot corrupt it either"
            )
        return num_noise, num_spans

    def __call__(self, chunks: Sequence[bytes | np.ndarray], sample_ids: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """The batch for these chunks; sample_ids (one int per chunk) key the random draws."""
        raw, lengths = pad_chunks(chunks)
        ids = content_ids(chunks) if sample_ids is None else np.asarray(sample_ids, dtype=np.int64)
        if ids.shape != lengths.shape:
            raise ValueError(f"got {len(ids)} sample_ids for {len(lengths)} chunks")
        return self.collate_padded(raw, lengths, ids)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_layouts": {}}  # a cache: not worth shipping to DataLoader workers

    def _layout(self, lengths: np.ndarray, raw_width: int) -> _Layout:
        key = (raw_width, lengths.tobytes())
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= _LAYOUT_CACHE:
                self._layouts.clear()
            layout = self._layouts[key] = _Layout(self, lengths, raw_width)
        return layout

    def _segmentations(self, layout: _Layout, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = len(layout.num_spans)
        example_key = splitmix64(self._seed_key ^ splitmix64(np.asarray(sample_ids, dtype=np.int64)))
        bits = splitmix64(example_key[:, None] + layout.counter_offsets)  # keyed_hash with cached counters
        # Rows [0, n) cut the noise bytes, rows [n, 2n) the others (one call for both).
        bits = bits.reshape(rows, 2, layout.kmax).transpose(1, 0, 2).reshape(2 * rows, layout.kmax)
        noise_starts, keep_starts = np.split(_segment_starts(bits, layout), 2)
        return noise_starts, keep_starts

    def collate_padded(self, raw: np.ndarray, lengths: np.ndarray, sample_ids: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch for a zero-padded (rows, width) uint8 array of chunks and their lengths."""
        return to_tensors(self.corrupt_padded(raw, lengths, sample_ids))

    def corrupt_padded(self, raw: np.ndarray, lengths: np.ndarray, sample_ids: np.ndarray) -> dict[str, np.ndarray]:
        """collate_padded's fields as int64 NumPy arrays (they pickle faster than tensors)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if raw.ndim != 2 or raw.dtype != np.uint8 or len(raw) != len(lengths) or lengths.max(initial=0) > raw.shape[1]:
            raise ValueError(f"raw must be a (rows, >= longest) uint8 array for {len(lengths)} lengths, got "
                             f"{raw.dtype} {raw.shape}")
        layout = self._layout(lengths, raw.shape[1])
        noise_starts, keep_starts = self._segmentations(layout, sample_ids)
        table = layout.table.fill(raw)
        keep_len = np.diff(keep_starts, axis=1)  # 0 past the row's spans: starts repeat the total
        first_byte = layout.row_start + keep_starts[:, :-1] + noise_starts[:, :-1]
        input_starts, input_lengths = (a.copy() for a in layout.input_pieces)
        input_starts[:, 0:-2:2], input_lengths[:, 0:-2:2] = first_byte, keep_len
        target_starts, target_lengths = (a.copy() for a in layout.target_pieces)
        target_starts[:, 1:-2:2], target_lengths[:, 1:-2:2] = first_byte + keep_len, np.diff(noise_starts, axis=1)
        input_ids = _assemble(table, input_starts, input_lengths, layout.input_arange)
        labels = _assemble(table, target_starts, target_lengths, layout.target_arange)
        decoder_input_ids = np.empty_like(labels)
        decoder_input_ids[:, 0] = DECODER_START_ID
        np.maximum(labels[:, :-1], PAD_ID, out=decoder_input_ids[:, 1:])
        return {
            "input_ids": input_ids,
            "attention_mask": layout.attention_mask.copy(),
            "labels": labels,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": layout.decoder_attention_mask.copy(),
        }

    @staticmethod
    def _width(lengths: np.ndarray, pad_to: int | None, what: str) -> int:
        longest = int(lengths.max(initial=0))
        if pad_to is None:
            return longest
        if longest > pad_to:
            raise ValueError(f"{what} of {longest} ids do not fit pad_{what}_to={pad_to}; use shorter chunks")
        return pad_to
