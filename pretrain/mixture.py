"""The data mixture: how many samples of each epoch every source directory contributes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mixture_shares(rows: Sequence[int], weights: Sequence[float] | None,
                   temperature_alpha: float | None) -> np.ndarray:
    """Each directory's intended share of the samples (summing to 1).

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
    return p / p.sum()


def mixing_counts(rows: Sequence[int], total: int, weights: Sequence[float] | None,
                  temperature_alpha: float | None) -> np.ndarray:
    """Samples per epoch from each directory: total split by `mixture_shares`, largest remainder."""
    quota = mixture_shares(rows, weights, temperature_alpha) * total
    counts = np.floor(quota).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(quota - counts), kind="stable")[:short]] += 1
    return counts


def describe_mixture(dirs: Sequence[str], rows: Sequence[int], counts: Sequence[int],
                     weights: Sequence[float] | None, temperature_alpha: float | None) -> list[str]:
    """Log lines: each directory's samples per epoch, their share against the intended one, and
    how many passes over its rows that is."""
    total = int(sum(counts))
    rule = (f"weights {', '.join(f'{w:g}' for w in weights)}" if weights is not None
            else f"temperature_alpha {temperature_alpha:g}" if temperature_alpha is not None
            else "proportional to rows")
    shares = mixture_shares(rows, weights, temperature_alpha)
    lines = [f"data mixture ({rule}): {total:,} samples per epoch"]
    for directory, n_rows, count, share in zip(dirs, rows, counts, shares):
        passes = count / n_rows if n_rows else 0.0
        lines.append(f"  {directory}: {int(count):,} samples per epoch ({100 * count / total:.1f}%, intended "
                     f"{100 * share:.1f}%) from {int(n_rows):,} rows ({passes:.2f} passes)")
    return lines
