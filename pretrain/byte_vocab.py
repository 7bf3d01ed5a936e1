"""Byte vocabulary ids and sentinels, and byte <-> id conversion (docs/ARCHITECTURE.md, Byte vocabulary).

The span-corruption length arithmetic that data prep shares with training lives in
`data_prep.span_lengths`.
"""
from __future__ import annotations

import numpy as np

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2
BYTE_OFFSET = 3  # byte b -> id b + 3
VOCAB_SIZE = 384  # rows 259..383 exist in ByT5 checkpoints but are never produced
FIRST_SENTINEL_ID = 258  # the i-th noise span gets 258 - i (seqio ByteVocabulary), NOT HF's <extra_id_i>
# Ids 258..248 are the bytes 0xFF..0xF5, which never occur in valid UTF-8.
MAX_SAFE_SENTINELS = 11


def sentinel_id(span_index: int) -> int:
    """Id of the sentinel that marks noise span `span_index` (0-based)."""
    return FIRST_SENTINEL_ID - span_index


def encode(data: bytes) -> np.ndarray:
    """Raw bytes -> int64 ids (no EOS)."""
    return np.frombuffer(data, dtype=np.uint8).astype(np.int64) + BYTE_OFFSET


def decode(ids) -> bytes:
    """Ids -> bytes, dropping pad/eos/unk and anything outside the byte range."""
    arr = np.asarray(ids, dtype=np.int64)
    arr = arr[(arr >= BYTE_OFFSET) & (arr < BYTE_OFFSET + 256)]
    return (arr - BYTE_OFFSET).astype(np.uint8).tobytes()
