"""Cleaning as an ordered list of named steps, as datatrove's filters are.

A step gets a document's text and returns it (rewritten or not) or None to drop the document; the
pipeline counts the drop under the step's name, so adding a filter is writing one predicate and
listing it: `check("too_short", lambda text: len(text) >= 20)`. A step that wants to count what
it changed (PII replacements per kind) adds to the `edits` counter it is given. Filters that test
numbers measured in one pass over the document (the quality presets') are `measured` steps: the
pipeline measures a document once for a run of them and then tests each.
"""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from data_prep.stats import DocCounts


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[str, Counter], str | None]
    measure: Callable[[str], Any] | None = None  # measured steps only: what `keep` tests
    keep: Callable[[Any], bool] | None = None


def check(name: str, keep: Callable[[str], bool]) -> Step:
    """A filter: documents for which `keep` is false are dropped, counted under `name`."""
    return Step(name, lambda text, edits: text if keep(text) else None)


def measured(name: str, measure: Callable[[str], Any], keep: Callable[[Any], bool]) -> Step:
    """A filter on `measure(text)`: consecutive measured steps with the same `measure` are run as
    one pipeline stage that measures each document once (a step run alone measures for itself)."""
    return Step(name, lambda text, edits: text if keep(measure(text)) else None, measure, keep)


def rewrite(name: str, fn: Callable[[str], str]) -> Step:
    """A text rewrite that never drops (an emptied document is dropped by a later check)."""
    return Step(name, lambda text, edits: fn(text))


class Drop(NamedTuple):
    """What a stage of several measured steps returns to drop a document: the step that failed."""
    step: str


Stage = Callable[[str, Counter], "str | Drop | None"]


def stages(steps: Iterable[Step]) -> tuple[tuple[str, Stage], ...]:
    """(name, run) of each step, with each run of consecutive measured steps that share a measure
    fused into one stage: it measures once, then tests the steps in order."""
    fused = []
    for measure, group in itertools.groupby(steps, key=lambda step: step.measure):
        group = list(group)
        if measure is None or len(group) == 1:
            fused += [(step.name, step.run) for step in group]
        else:
            fused.append((group[0].name, _tests(measure, tuple((Drop(s.name), s.keep) for s in group))))
    return tuple(fused)


def _tests(measure: Callable[[str], Any], tests: tuple[tuple[Drop, Callable[[Any], bool]], ...]) -> Stage:
    def run(text: str, edits: Counter) -> str | Drop:
        measures = measure(text)
        for drop, keep in tests:
            if not keep(measures):
                return drop
        return text
    return run


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
    _stages: tuple[tuple[str, Stage], ...] = ()

    def __post_init__(self) -> None:
        self._stages = stages(self.steps)
        if self.keep_samples > 0:  # only then does a stage pay for looking at the edit counts
            self._stages = tuple((name, self._sampling(name, run)) for name, run in self._stages)

    @classmethod
    def of(cls, steps: Iterable[Step], keep_samples: int = 0) -> Pipeline:
        return cls(tuple(steps), keep_samples)

    def __call__(self, text: str) -> str | None:
        """The cleaned text, or None if a step dropped it."""
        edits = self.counts.edits
        for name, run in self._stages:
            result = run(text, edits)
            if result is None or result.__class__ is Drop:
                name = name if result is None else result.step
                self.counts.dropped[name] += 1
                self._sample(name, text)
                return None
            text = result
        self.counts.docs_clean += 1
        return text

    def _sampling(self, name: str, run: Stage) -> Stage:
        """`run`, keeping a sample of the documents it edits."""
        def sampled(text: str, edits: Counter) -> str | Drop | None:
            before = sum(edits.values())
            result = run(text, edits)
            if result is not None and result.__class__ is not Drop and sum(edits.values()) != before:
                self._sample(name, result)
            return result
        return sampled

    def _sample(self, name: str, text: str) -> None:
        if self._sampled[name] < self.keep_samples:
            self._sampled[name] += 1
            self.samples.append(Sample(name, text))
