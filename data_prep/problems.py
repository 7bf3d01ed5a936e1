"""Bad-input bookkeeping: every problem is counted by kind and reported with its location."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("data_prep")

# Enough for a user to locate a pattern; the counts stay exact beyond it.
MAX_SAMPLES = 50


@dataclass
class Problems:
    counts: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def report(self, kind: str, location: str, message: str) -> None:
        """Count one problem and log it (the first MAX_SAMPLES of each run are logged in full)."""
        self.counts[kind] += 1
        if len(self.samples) < MAX_SAMPLES:
            line = f"{location}: {kind}: {message}"
            self.samples.append(line)
            log.warning(line)

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add the counts of problems reported (and logged) elsewhere, e.g. by a worker."""
        self.counts.update(counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
