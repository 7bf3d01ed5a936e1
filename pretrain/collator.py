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

from pretrain.byte_vocab import BYTE_OFFSET, EOS_ID, FIRST_SENTINEL_ID, MAX_SAFE_SENTINELS, PAD_ID

LABEL_PAD = -100
DECODER_START_ID = PAD_ID  # T5's decoder_start_token_id

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NOISE_STREAM, _NONNOISE_STREAM = 1, 2  # seqio draws the two segmentations from separate seeds


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping is the point
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def keyed_hash(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Counter-based random uint64s: splitmix64 of key + (counter + 1) * gamma (broadcasting)."""
    with np.errstate(over="ignore"):  # wrapping is the point
        return splitmix64(np.asarray(key, dtype=np.uint64) + (np.asarray(counter, dtype=np.uint64) + np.uint64(1)) * _GAMMA)


def span_counts(lengths: np.ndarray, noise_density: float, mean_noise_span_length: float) -> tuple[np.ndarray, np.ndarray]:
    """(num_noise, num_spans) per length, vectorised `byte_vocab.noise_counts` (float32, half-to-even).

    Lengths below 2 get no noise at all: seqio pads the length to 2, puts the single noise
    byte last, then cuts the mask back to the original length.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    num_noise = np.round(lengths.astype(np.float32) * np.float32(noise_density)).astype(np.int64)
    num_noise = np.minimum(np.maximum(num_noise, 1), lengths - 1)
    num_spans = np.maximum(np.round(num_noise.astype(np.float32) / np.float32(mean_noise_span_length)).astype(np.int64), 1)
    short = lengths < 2
    return np.where(short, 0, num_noise), np.where(short, 0, num_spans)


def _segment_starts(keys: np.ndarray, num_items: np.ndarray, num_segments: np.ndarray) -> np.ndarray:
    """Starts of a uniform random composition of num_items into num_segments non-empty parts.

    seqio shuffles num_segments - 1 ones among the num_items - 1 gaps between items, i.e. cuts
    at a uniform random subset of the gaps. The subset is drawn here with Floyd's algorithm,
    vectorised over rows (one step per cut, at most MAX_SAFE_SENTINELS - 1 steps in practice),
    from the per-row uint64 `keys`. Returns (rows, max segments + 1) int64: 0, the sorted cuts,
    then num_items repeated
    to fill the row.
    """
    rows = num_items.shape[0]
    cuts = np.maximum(num_segments - 1, 0)
    gaps = num_items - 1
    kmax = int(cuts.max(initial=0))
    unit = (keyed_hash(keys[:, None], np.arange(kmax)) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    chosen = np.empty((rows, kmax), dtype=np.int64)
    for step in range(kmax):
        top = gaps - cuts + step  # Floyd: for top in n-k .. n-1, draw t uniform in [0, top]
        draw = np.minimum((unit[:, step] * (top + 1)).astype(np.int64), np.maximum(top, 0))
        taken = (chosen[:, :step] == draw[:, None]).any(axis=1)
        chosen[:, step] = np.where(step < cuts, np.where(taken, top, draw), gaps)  # gaps: sorts last
    chosen.sort(axis=1)
    starts = np.empty((rows, kmax + 2), dtype=np.int64)
    starts[:, 0] = 0
    starts[:, 1:-1] = chosen + 1
    starts[:, -1] = num_items
    return starts


def _interleave(raw: np.ndarray, sentinel_pos: np.ndarray, live: np.ndarray, other_before: np.ndarray,
                lengths: np.ndarray, width: int, pad: int) -> np.ndarray:
    """Assemble one side (inputs or targets) of span-corrupted rows by gathering from `raw`.

    sentinel_pos: (rows, spans) output position of sentinel k where `live`; other_before:
    (rows, spans + 1) count of bytes of the *other* side before the bytes that follow sentinel
    k - 1. Bytes are gathered from a running source index that advances by one per output
    position and jumps over the other side's segment after each sentinel.
    """
    rows, raw_width = raw.shape
    jumps = np.zeros((rows, width + 1), dtype=np.int64)
    jumps[:, 0] = np.arange(rows) * raw_width  # flat index of each row's first byte
    step = np.where(live, np.diff(other_before, axis=1) - 1, 0)  # -1: the sentinel consumed a position
    jumps[np.arange(rows)[:, None], np.where(live, np.minimum(sentinel_pos + 1, width), width)] += step
    source = np.cumsum(jumps[:, :width], axis=1)
    source += np.arange(width)
    out = np.empty((rows, width), dtype=np.int64)
    np.add(raw.reshape(-1).take(source, mode="clip") if raw.size else 0, BYTE_OFFSET, out=out, dtype=np.int64)
    row_of = np.broadcast_to(np.arange(rows)[:, None], live.shape)
    out[row_of[live], sentinel_pos[live]] = FIRST_SENTINEL_ID - np.nonzero(live)[1]
    out[np.arange(width) >= (lengths - 1)[:, None]] = pad
    out[np.arange(rows), lengths - 1] = EOS_ID
    return out


def pad_chunks(chunks: Sequence[bytes | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Byte chunks -> (rows, longest) uint8 array, zero padded, and the lengths (no per-row copy loop)."""
    parts = [c if isinstance(c, (bytes, bytearray)) else np.asarray(c, dtype=np.uint8).tobytes() for c in chunks]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    flat = np.frombuffer(b"".join(parts), dtype=np.uint8)
    width = int(lengths.max(initial=0))
    starts = np.cumsum(lengths) - lengths
    index = starts[:, None] + np.arange(width)
    valid = np.arange(width) < lengths[:, None]
    raw = np.where(valid, flat[np.where(valid, index, 0)] if flat.size else 0, 0).astype(np.uint8)
    return raw, lengths


def content_ids(chunks: Sequence[bytes | np.ndarray]) -> np.ndarray:
    """A 63-bit BLAKE2b id per chunk: the default sample id, so corruption depends on content only."""
    digest = lambda c: int.from_bytes(hashlib.blake2b(bytes(c), digest_size=8).digest(), "little") >> 1  # noqa: E731
    return np.fromiter(map(digest, chunks), dtype=np.int64, count=len(chunks))


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
        self._seed_key = splitmix64(np.uint64(self.seed & 0xFFFFFFFFFFFFFFFF))

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
        raw, lengths = pad_chunks(chunks)
        ids = content_ids(chunks) if sample_ids is None else np.asarray(sample_ids, dtype=np.int64)
        if ids.shape != lengths.shape:
            raise ValueError(f"got {len(ids)} sample_ids for {len(lengths)} chunks")
        return self.collate_padded(raw, lengths, ids)

    def spans(self, lengths: np.ndarray, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(num_spans, keep_starts, noise_starts) per row: the random segmentation of each example.

        keep_starts[:, k] / noise_starts[:, k] count the non-noise / noise bytes before span k
        (column num_spans holds the totals); spans alternate non-noise k, noise k.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        num_noise, num_spans = self.check_lengths(lengths)
        base = splitmix64(self._seed_key ^ splitmix64(np.asarray(sample_ids, dtype=np.int64).astype(np.uint64)))
        # Both segmentations in one call: rows [0, n) split the noise, rows [n, 2n) the rest.
        starts = _segment_starts(np.concatenate([base ^ np.uint64(_NOISE_STREAM), base ^ np.uint64(_NONNOISE_STREAM)]),
                                 np.concatenate([num_noise, lengths - num_noise]), np.concatenate([num_spans, num_spans]))
        noise_starts, keep_starts = np.split(starts, 2)
        return num_spans, keep_starts, noise_starts

    def collate_padded(self, raw: np.ndarray, lengths: np.ndarray, sample_ids: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch for a zero-padded (rows, width) uint8 array of chunks and their lengths."""
        lengths = np.asarray(lengths, dtype=np.int64)
        num_spans, keep_starts, noise_starts = self.spans(lengths, sample_ids)
        num_keep, num_noise = keep_starts[:, -1], noise_starts[:, -1]
        span = np.arange(keep_starts.shape[1] - 1)
        live = span < num_spans[:, None]
        # inputs: keep_0 S_0 keep_1 S_1 ... (sentinel k follows keep segments 0..k);
        # targets: S_0 noise_0 S_1 noise_1 ... (sentinel k follows noise segments 0..k-1).
        input_lengths = num_keep + num_spans + 1
        target_lengths = num_noise + num_spans + 1
        input_ids = _interleave(raw, keep_starts[:, 1:] + span, live, noise_starts, input_lengths,
                                self._width(input_lengths, self.pad_inputs_to, "inputs"), PAD_ID)
        labels = _interleave(raw, noise_starts[:, :-1] + span, live, keep_starts, target_lengths,
                             self._width(target_lengths, self.pad_targets_to, "targets"), LABEL_PAD)
        decoder_input_ids = np.empty_like(labels)
        decoder_input_ids[:, 0] = DECODER_START_ID
        decoder_input_ids[:, 1:] = np.maximum(labels[:, :-1], PAD_ID)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy((np.arange(input_ids.shape[1]) < input_lengths[:, None]).astype(np.int64)),
            "labels": torch.from_numpy(labels),
            "decoder_input_ids": torch.from_numpy(decoder_input_ids),
            "decoder_attention_mask": torch.from_numpy((labels != LABEL_PAD).astype(np.int64)),
        }

    @staticmethod
    def _width(lengths: np.ndarray, pad_to: int | None, what: str) -> int:
        longest = int(lengths.max(initial=0))
        if pad_to is None:
            return longest
        if longest > pad_to:
            raise ValueError(f"{what} of {longest} ids do not fit pad_{what}_to={pad_to}; use shorter chunks")
        return pad_to
