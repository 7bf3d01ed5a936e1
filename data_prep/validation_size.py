"""How big a validation split must be to measure anything: the minimum draw for small corpora
and the warning below a useful size, one rule for data prep and for training.

Evaluation reports byte accuracy on the span-corruption targets of the validation split. Below
USEFUL_TARGET_BYTES (10,000) target bytes its standard error is over half a point even if the
bytes were independent (sqrt(0.25 / 10,000)); a span's bytes are not, so fewer measure noise.
Data prep sees raw bytes, of which T5's noise density (15%) become targets: the same 10,000
target bytes are about 67 KB of validation text.
"""
from __future__ import annotations

import numpy as np

from data_prep.pack import PackOptions

USEFUL_TARGET_BYTES = 10_000
T5_NOISE_DENSITY = 0.15
# --min-val-docs' default; never more than a tenth of the kept documents.
MIN_VAL_DOCS = 100
MAX_VAL_SHARE = 0.1
# The minimum applies to inputs up to this size: it needs every kept hash before packing starts,
# which costs a small corpus a fraction of a second, while a larger one gets enough documents
# from --val-fraction alone.
SMALL_CORPUS_BYTES = 64 << 20


def applies_minimum(options: PackOptions, input_bytes: int) -> bool:
    """Whether the --val-fraction draw (not 0: no validation wanted) is topped up to min_val_docs."""
    return (options.val_docs is None and options.val_fraction > 0 and options.min_val_docs > 0
            and input_bytes <= SMALL_CORPUS_BYTES)


def minimum_threshold(kept: np.ndarray, min_val_docs: int) -> int:
    """A hash threshold below which the `min_val_docs` smallest-hash documents fall (at most a
    tenth of `kept`); 0 when that is none."""
    count = min(min_val_docs, int(len(kept) * MAX_VAL_SHARE))
    return int(np.partition(kept, count)[count]) if count else 0


def small_validation_warning(target_bytes: int, what: str, advice: str) -> str | None:
    """The warning for a validation split of `target_bytes` span-corruption targets, or None."""
    if target_bytes >= USEFUL_TARGET_BYTES:
        return None
    return (f"{what}: only about {target_bytes:,} target bytes to evaluate on, fewer than the "
            f"{USEFUL_TARGET_BYTES:,} that measure anything (eval loss and byte accuracy will be noise); {advice}")
