"""Bad-input bookkeeping: every problem is counted by kind and reported with its location."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("data_prep")

# Per Problems (one per unit of work, one for planning the inputs): enough to locate a pattern
# without flooding the log when a whole corpus is bad; the counts stay exact beyond these.
MAX_LOGGED = 5
MAX_SAMPLES = 20


@dataclass
class Problems:
    counts: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def report(self, kind: str, location: str, message: str) -> None:
        """Count one problem; keep (and log) the first ones in full."""
        self.counts[kind] += 1
        line = f"{location}: {kind}: {message}"
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(line)
        if self.total <= MAX_LOGGED:
            log.warning(line)
        elif self.total == MAX_LOGGED + 1:
            log.warning("%s: further problems here are counted but not logged (the manifest has the counts)", location.split(":")[0])

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add the counts of problems reported (and logged) elsewhere, e.g. by a worker."""
        self.counts.update(counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
