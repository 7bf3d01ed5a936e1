"""T5 span-corruption collator for raw byte chunks, vectorised over the batch.

Semantics are seqio's `random_spans_noise_mask` + `noise_span_to_unique_sentinel` with the byte
vocabulary (docs/ARCHITECTURE.md, Byte vocabulary and Span corruption). Randomness is
counter-based (`pretrain.randomness`): every random key is a hash of (seed, sample_id, position),
so an example's corruption is a pure function of (seed, sample_id, chunk) whatever batch or
DataLoader worker it lands in.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from data_prep.span_lengths import noise_counts_array
from pretrain.byte_vocab import BYTE_OFFSET, FIRST_SENTINEL_ID, MAX_SAFE_SENTINELS, PAD_ID
from pretrain.randomness import content_ids, example_keys, seed_key, splitmix64, uniform_below
from pretrain.span_layout import LABEL_PAD, SpanLayout  # noqa: F401  (LABEL_PAD: batch API)

DECODER_START_ID = PAD_ID  # T5's decoder_start_token_id

_LAYOUT_CACHE = 256  # distinct chunk-length vectors remembered (full chunks: one)


def span_counts(lengths: np.ndarray, noise_density: float, mean_noise_span_length: float) -> tuple[np.ndarray, np.ndarray]:
    """(num_noise, num_spans) per chunk length: `span_lengths.noise_counts_array`, except that

    lengths below 2 get no noise at all: seqio pads the length to 2, puts the single noise
    byte last, then cuts the mask back to the original length.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    num_noise, num_spans = noise_counts_array(lengths, noise_density, mean_noise_span_length)
    short = lengths < 2
    return np.where(short, 0, num_noise), np.where(short, 0, num_spans)


def _segment_starts(bits: np.ndarray, layout: SpanLayout) -> np.ndarray:
    """Starts of a uniform random composition of items into num_spans non-empty parts, per row.

    seqio shuffles num_spans - 1 ones among the items - 1 gaps between items, i.e. cuts at a
    uniform random subset of the gaps. The subset is drawn with Floyd's algorithm (for top in
    n-k .. n-1: draw t uniform in [0, top], take top instead if t is already chosen) from the
    (rows, kmax) random uint64 `bits`. Returns (rows, kmax + 2) int64: 0, the sorted cuts + 1,
    then the row's item count repeated to fill the row.
    """
    draws = uniform_below(bits, layout.top_span)  # uniform in [0, top]
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
        self._layouts: dict[tuple[int, bytes], SpanLayout] = {}

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

    def _layout(self, lengths: np.ndarray, raw_width: int) -> SpanLayout:
        key = (raw_width, lengths.tobytes())
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= _LAYOUT_CACHE:
                self._layouts.clear()
            layout = self._layouts[key] = SpanLayout(lengths, *self.check_lengths(lengths), raw_width,
                                                     self.pad_inputs_to, self.pad_targets_to)
        return layout

    def _segmentations(self, layout: SpanLayout, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = len(layout.num_spans)
        bits = splitmix64(example_keys(self._seed_key, sample_ids)[:, None] + layout.counter_offsets)  # keyed_hash with cached counters
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
