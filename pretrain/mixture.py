"""The data mixture: how many samples of each epoch every source directory contributes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mixing_counts(rows: Sequence[int], total: int, weights: Sequence[float] | None,
                  temperature_alpha: float | None) -> np.ndarray:
    """Samples per epoch from each directory: total split by the mixing weights, largest remainder.

    weights: explicit; temperature_alpha: p_i ~ rows_i ** alpha (mT5/ByT5); neither: p_i ~ rows_i.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if weights is not None and temperature_alpha is not None:
        raise ValueError("give either mixing weights or temperature_alpha, not both")
    if weights is not None:
        p = np.asarray(weights, dtype=np.float64)
        if p.shape != rows.shape or (p < 0).any() or not p.sum() > 0:
            raise ValueError(f"weights must be {len(rows)} non-negative numbers, not all 0; got {list(weights)}")
        empty = np.flatnonzero((p > 0) & (rows == 0))
        if empty.size:
            raise ValueError(f"directory #{empty[0]} has weight {p[empty[0]]} but no rows")
    else:
        p = np.where(rows > 0, rows ** (1.0 if temperature_alpha is None else temperature_alpha), 0.0)
    quota = p / p.sum() * total
    counts = np.floor(quota).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(quota - counts), kind="stable")[:short]] += 1
    return counts
