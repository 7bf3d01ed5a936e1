"""Progress: a tqdm bar (MB/s, docs/s) on a terminal, a plain log line every few seconds otherwise."""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("data_prep")


class Progress:
    def __init__(self, total_bytes: int, description: str, interval_s: float = 10.0, tty: bool | None = None):
        self.total = total_bytes
        self.description = description
        self.interval_s = interval_s
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._bar = _tqdm()(total=total_bytes, unit="B", unit_scale=True, desc=description,
                         file=sys.stderr) if self._tty else None
        self._done = 0
        self._docs = 0
        self._start = time.monotonic()
        self._last_log = self._start

    def update(self, nbytes: int, docs: int) -> None:
        self._done += nbytes
        self._docs += docs
        elapsed = max(time.monotonic() - self._start, 1e-9)
        if self._bar is not None:
            self._bar.update(nbytes)
            self._bar.set_postfix_str(f"{self._docs / elapsed:,.0f} docs/s", refresh=False)
        elif time.monotonic() - self._last_log >= self.interval_s or self._done >= self.total:
            self._last_log = time.monotonic()
            log.info("%s: %.1f/%.1f MB (%.0f%%), %.1f MB/s, %.0f docs/s", self.description, self._done / 1e6,
                     self.total / 1e6, 100 * self._done / max(self.total, 1), self._done / 1e6 / elapsed,
                     self._docs / elapsed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _tqdm():
    """tqdm, imported only for a terminal: its import (about 70 ms, most of it reading package
    metadata) is serial start-up time that batch jobs, with plain log lines, need not pay."""
    from tqdm import tqdm

    return tqdm
