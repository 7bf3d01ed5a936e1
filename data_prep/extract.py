"""Phase 1, run by the workers: read one unit, clean its documents, spill them to the work dir.

A unit's result is a pure function of the unit and the options, so any number of workers, in any
order, produce the same spills.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from data_prep.audit import unit_samples
from data_prep.clean import CleanOptions, cleaning_steps
from data_prep.minhash import BandKeySpill, NearDedupOptions
from data_prep.near_dedup import lsh_path
from data_prep.decontam import decontam_steps
from data_prep.pii import pii_steps
from data_prep.quality import quality_steps
from data_prep.readers import READERS, Doc, ReadContext, ReadOptions, Unit
from data_prep.spill import SpillWriter
from data_prep.stats import UnitStats
from data_prep.steps import Pipeline, Step

_TRUNCATION_ERRORS = (EOFError, zipfile.BadZipFile, zlib.error)
CPU_SECONDS = "cpu_seconds"  # a unit's extraction time, in its meta (not in the manifest: output stays deterministic)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ExtractJob:
    unit: Unit
    read: ReadOptions
    clean: CleanOptions
    workdir: Path
    near: NearDedupOptions = NearDedupOptions()


def document_steps(unit: Unit, options: CleanOptions, kernels: bool = False) -> list[Step]:
    """Every step a document of `unit` goes through, in order (`kernels`: see cleaning_steps)."""
    return (cleaning_steps(unit.fmt, options, kernels) + decontam_steps(options.decontaminate)
            + quality_steps(options.quality_of(unit.source)) + pii_steps(options.pii))


def uses_kernels(clean: CleanOptions, near: NearDedupOptions) -> bool:
    """Whether any document step of the run is a compiled (numba) kernel."""
    presets = {clean.quality} | {preset for _, preset in clean.quality_for}
    return near.enabled or clean.pii == "mask" or bool(clean.decontaminate) or presets != {"off"} or \
        clean.min_hangul_ratio > 0


# Documents that go through every step of every preset (lines that end sentences, Hangul, a phone
# number and an e-mail address to mask, a run of ㅋ to cut); the last, shorter than a shingle, gets
# its band keys from its hash where a preset keeps it.
_REHEARSAL = ("오늘 서울의 낮 기온은 영상 십 도까지 올라 포근하겠습니다.\n"
              "내일은 전국이 대체로 맑고 아침 기온은 조금 낮아지겠습니다.\n"
              "주말에는 남부 지방을 중심으로 비가 내리겠습니다.",
              "문의는 고객센터 02-3456-7890 또는 help@example.com 으로 보내 주세요.\n"
              "평일 오전 아홉 시부터 오후 여섯 시까지 상담합니다. 친절해요ㅋㅋㅋㅋ",
              "네 맞아요")


def load_kernels(units: list[Unit], clean: CleanOptions, near: NearDedupOptions) -> None:
    """Load every compiled kernel the units' steps call, by extracting a rehearsal unit per quality
    preset in a scratch directory: numba's first kernel costs ~1 CPU s, each later one ~0.01 s
    from its disk cache, ~0.2 s in all. Then that is the run's start-up, not its first unit's time,
    and workers forked after this inherit the kernels instead of each loading them."""
    with tempfile.TemporaryDirectory(prefix="data_prep_rehearsal_") as scratch:
        path = Path(scratch) / "rehearsal.jsonl"
        path.write_text("".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in _REHEARSAL), "utf-8")
        sources = {clean.quality_of(unit.source): unit.source for unit in units}
        for index, source in enumerate(sources.values()):
            unit = Unit(index, str(path), source, "jsonl", path.stat().st_size)
            extract_unit(ExtractJob(unit, ReadOptions(), clean, Path(scratch), near))


def die_with_parent(parent: int) -> None:
    """Pool worker initializer: the worker is killed (SIGKILL, silently) as soon as its parent
    dies, e.g. by kill -9, instead of working through the queued units and printing a
    BrokenPipeError traceback for each result it can no longer send. Linux only (prctl); the
    unit being extracted is lost, and redone by the next run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers outlive the parent for a while, as before
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def extract_unit(job: ExtractJob) -> dict:
    """Process one unit; return (and store beside its spill) its counts."""
    started = time.process_time()
    unit = job.unit
    ctx = ReadContext(job.read)
    spill = SpillWriter(job.workdir, unit.index)
    pipeline = Pipeline.of(document_steps(unit, job.clean, uses_kernels(job.clean, job.near)), job.clean.keep_samples)
    keys = _band_keys(job)
    text_bytes = 0
    location = unit.name
    failures: list[Exception] = []
    try:
        for text, location in _guarded(READERS[unit.fmt](unit, ctx), failures):
            if "\x00" in text:
                ctx.problems.report("nul_bytes", location, f"{text.count(chr(0))} NUL character(s) removed")
            cleaned = pipeline(text)
            if cleaned is None:
                continue
            data = cleaned.encode("utf-8")
            text_bytes += len(data)
            spill.add(data)
            if keys is not None:
                keys.add(cleaned)
    except Exception as err:
        err.add_note(f"data_prep: this failed on {location}, after reading it: a bug of data_prep's, not the input's")
        raise
    if failures and _report_failure(failures[0], unit, location, ctx, spill, pipeline):
        keys, text_bytes = _band_keys(job), 0
        pipeline = Pipeline.of(pipeline.steps, job.clean.keep_samples)
    # Every document the input holds is either spilled or dropped (by the reader, a step, or with
    # its corrupt zip member).
    counts = pipeline.counts
    dropped = ctx.dropped + counts.dropped
    docs_clean = counts.docs_clean
    stats = UnitStats(docs_read=docs_clean + sum(dropped.values()), docs_clean=docs_clean,
                      clean_bytes=text_bytes, dropped=dropped, edits=counts.edits, bytes_in=unit.size,
                      problems=ctx.problems.counts)
    meta = {"unit": unit.index, "source": unit.source, **stats.to_json(), "problem_samples": ctx.problems.samples,
            "samples": unit_samples(pipeline.samples, unit.source, job.clean.pii == "mask")}
    if keys is not None:
        keys.commit()  # before the spill, whose .json marks the unit done
    meta[CPU_SECONDS] = time.process_time() - started  # the worker's own time: its rate, whatever the others do
    spill.commit(meta)
    return meta


def _guarded(docs: Iterator[Doc], failures: list[Exception]) -> Iterator[Doc]:
    """The reader's documents, until the reader fails on bytes it did not expect: the failure is
    put in `failures`, for the caller to report, and the rest of the run goes on. A step's failure
    is not caught here: it would fail on every unit alike (a kernel that does not load), and a run
    that reports it per unit ends with exit 0 and no documents."""
    try:
        yield from docs
    except Exception as err:  # noqa: BLE001 - any reader failure on bad bytes must not lose the rest of the run
        failures.append(err)


def _band_keys(job: ExtractJob) -> BandKeySpill | None:
    return BandKeySpill(lsh_path(job.workdir, job.unit.index), job.near) if job.near.enabled else None


def _report_failure(err: Exception, unit: Unit, location: str, ctx: ReadContext, spill: SpillWriter,
                    pipeline: Pipeline) -> bool:
    """Report a reader failure that ends the unit. A zip member failing its integrity check (CRC,
    cut data) may already have yielded garbage: all its documents, spilled or dropped by a step,
    count as discarded, and True is returned: the caller then forgets the pipeline's counts (its
    drops, edits and samples are of those documents)."""
    if unit.member is None or not isinstance(err, _TRUNCATION_ERRORS):
        kind = "truncated_archive" if isinstance(err, _TRUNCATION_ERRORS) else "read_error"
        ctx.problems.report(kind, f"{unit.name} after {location}", f"{type(err).__name__}: {err}; rest of unit skipped")
        return False
    discarded = spill.discard() + sum(pipeline.counts.dropped.values())
    ctx.dropped["corrupt_member"] += discarded
    ctx.problems.report("corrupt_member", unit.where, f"zip member fails its integrity check ({type(err).__name__}: "
                        f"{err}); all {discarded} of its document(s) discarded")
    return True
