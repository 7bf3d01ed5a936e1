"""Cleaning as an ordered list of named steps, as datatrove's filters are.

A step gets a document's text and returns it (rewritten or not) or None to drop the document; the
pipeline counts the drop under the step's name, so adding a filter is writing one predicate and
listing it: `check("too_short", lambda text: len(text) >= 20)`. A step that wants to count what
it changed (PII replacements per kind) adds to the `edits` counter it is given.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from data_prep.stats import DocCounts


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[str, Counter], str | None]


def check(name: str, keep: Callable[[str], bool]) -> Step:
    """A filter: documents for which `keep` is false are dropped, counted under `name`."""
    return Step(name, lambda text, edits: text if keep(text) else None)


def rewrite(name: str, fn: Callable[[str], str]) -> Step:
    """A text rewrite that never drops (an emptied document is dropped by a later check)."""
    return Step(name, lambda text, edits: fn(text))


@dataclass
class Sample:
    """A dropped or edited document kept for `data_prep inspect`: the step, and its text."""
    step: str
    text: str


@dataclass
class Pipeline:
    """Runs the steps over documents, counting drops per step (and whatever steps count) in
    `counts`; with `keep_samples` > 0 it also keeps that many dropped or edited texts per step."""
    steps: tuple[Step, ...]
    keep_samples: int = 0
    counts: DocCounts = field(default_factory=DocCounts)
    samples: list[Sample] = field(default_factory=list)
    _sampled: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, steps: Iterable[Step], keep_samples: int = 0) -> Pipeline:
        return cls(tuple(steps), keep_samples)

    def __call__(self, text: str) -> str | None:
        """The cleaned text, or None if a step dropped it."""
        edits, sampling = self.counts.edits, self.keep_samples > 0
        for step in self.steps:
            before = sum(edits.values()) if sampling else 0
            result = step.run(text, edits)
            if result is None:
                self.counts.dropped[step.name] += 1
                self._sample(step.name, text)
                return None
            if sampling and sum(edits.values()) != before:
                self._sample(step.name, result)
            text = result
        self.counts.docs_clean += 1
        return text

    def _sample(self, name: str, text: str) -> None:
        if self._sampled[name] < self.keep_samples:
            self._sampled[name] += 1
            self.samples.append(Sample(name, text))
