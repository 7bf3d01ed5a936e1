"""Typed data-prep counters that add themselves: one unit's extraction counts, one source's
packing counts, and a source's manifest entry, which is the sum of both kinds.

Every field is an int, a str -> int count dict, or a nested `Tally`; `a + b` adds field by field
and `to_json` writes the manifest's keys (count dicts sorted by key), so a new counter is one
new field, with no summing code of its own.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TypeVar

T = TypeVar("T", bound="Tally")


@dataclass
class Tally:
    def __add__(self: T, other: T) -> T:
        return type(self)(**{f.name: _add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def to_json(self) -> dict:
        return {f.name: _to_json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls: type[T], data: dict) -> T:
        """The inverse of `to_json`; keys it lacks (an older manifest) count as zero."""
        blank = cls()
        values = {}
        for f in fields(cls):
            if f.name in data:
                default, value = getattr(blank, f.name), data[f.name]
                values[f.name] = type(default).from_json(value) if isinstance(default, Tally) else \
                    Counter(value) if isinstance(default, dict) else value
        return cls(**values)

    @classmethod
    def total(cls: type[T], tallies) -> T:
        result = cls()
        for tally in tallies:
            result = result + tally
        return result


def _add(a, b):
    if isinstance(a, dict):
        return Counter(a) + Counter(b) if a or b else Counter()
    return a + b


def _to_json(value):
    if isinstance(value, Tally):
        return value.to_json()
    if isinstance(value, dict):
        return dict(sorted((k, v) for k, v in value.items() if v))
    return value


@dataclass
class DocCounts(Tally):
    """What the cleaning steps did to a stream of documents: drops by reason, edits by
    "step.detail" (e.g. PII replacements per kind)."""
    docs_clean: int = 0
    dropped: Counter = field(default_factory=Counter)
    edits: Counter = field(default_factory=Counter)


@dataclass
class UnitStats(DocCounts):
    """One extracted unit's counts, stored beside its spill (the `.json`) and read on resume."""
    docs_read: int = 0
    clean_bytes: int = 0
    bytes_in: int = 0
    problems: Counter = field(default_factory=Counter)


@dataclass
class SplitCounts(Tally):
    train: int = 0
    validation: int = 0

    def add(self, split: str, n: int) -> None:
        setattr(self, split, getattr(self, split) + n)


@dataclass
class PackStats(Tally):
    """One source's counts from the assembler: exact and near duplicates, documents and chunks per split."""
    duplicate: int = 0
    near_duplicate: int = 0
    docs: SplitCounts = field(default_factory=SplitCounts)
    chunks: SplitCounts = field(default_factory=SplitCounts)
    bytes_out: int = 0


@dataclass
class SourceStats(Tally):
    """One source's manifest entry."""
    files: int = 0
    docs_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    bytes_in: int = 0
    problems: Counter = field(default_factory=Counter)
    edits: Counter = field(default_factory=Counter)
    docs_kept: int = 0
    docs_validation: int = 0
    bytes_out: int = 0
    chunks: SplitCounts = field(default_factory=SplitCounts)

    @classmethod
    def of_unit(cls, unit: UnitStats) -> SourceStats:
        return cls(files=1, docs_read=unit.docs_read, dropped=Counter(unit.dropped), bytes_in=unit.bytes_in,
                   problems=Counter(unit.problems), edits=Counter(unit.edits))

    @classmethod
    def of_packing(cls, pack: PackStats) -> SourceStats:
        return cls(dropped=Counter({"duplicate": pack.duplicate, "near_duplicate": pack.near_duplicate}), docs_kept=pack.docs.train + pack.docs.validation,
                   docs_validation=pack.docs.validation, bytes_out=pack.bytes_out, chunks=pack.chunks)
