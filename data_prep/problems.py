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

    def merge(self, counts: dict[str, int], samples: list[str]) -> None:
        self.counts.update(counts)
        room = MAX_SAMPLES - len(self.samples)
        self.samples.extend(samples[:max(room, 0)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())
