"""The geometry of a span-corrupted batch: everything that depends on its chunk lengths only.

The collator caches one SpanLayout per chunk-length vector (full chunks: one), so a batch costs
its random draws plus two gathers from a GatherTable.
"""
from __future__ import annotations

import numpy as np

from pretrain.byte_vocab import BYTE_OFFSET, EOS_ID, FIRST_SENTINEL_ID, PAD_ID
from pretrain.randomness import counter_offsets

LABEL_PAD = -100  # labels past a row's targets: the ignore_index of the loss


class SpanLayout:
    """Everything about a batch that depends on its chunk lengths only (cached per length vector)."""

    def __init__(self, lengths: np.ndarray, num_noise: np.ndarray, num_spans: np.ndarray, raw_width: int,
                 pad_inputs_to: int | None, pad_targets_to: int | None) -> None:
        rows = len(lengths)
        self.num_noise, self.num_spans = num_noise, num_spans
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
        self.input_width = padded_width(self.input_lengths, pad_inputs_to, "inputs")
        self.target_width = padded_width(self.target_lengths, pad_targets_to, "targets")
        self.table = GatherTable(rows * raw_width, self.input_width, self.target_width)
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


def padded_width(lengths: np.ndarray, pad_to: int | None, what: str) -> int:
    """The batch width of one side: its longest row, or pad_to when given (which must fit it)."""
    longest = int(lengths.max(initial=0))
    if pad_to is None:
        return longest
    if longest > pad_to:
        raise ValueError(f"{what} of {longest} ids do not fit pad_{what}_to={pad_to}; use shorter chunks")
    return pad_to


class GatherTable:
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
