"""Input arguments -> the ordered list of work units.

An argument is `PATH` or `NAME=PATH`; PATH is a file, a directory (all files below it, sorted,
hidden ones skipped) or a glob. NAME is the `source` column of its documents (default: the file
or directory name without extensions). Zip and tar archives expand to their members (`data_prep.archives`). Big uncompressed
line-based files are cut into newline-aligned byte ranges so several workers share them. The
unit list depends only on the inputs and options, never on --workers.
"""
from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from data_prep.archives import is_tar, tar_units, zip_units
from data_prep.options import OptionError
from data_prep.problems import Problems
from data_prep.readers import FIELD_FORMATS, LINE_FORMATS, ReadOptions, Unit, detect_format
from data_prep.readers.compression import ZIP_MAGIC, compression_of, decompressed, strip_compression_suffix
from data_prep.readers.detect import SNIFF_BYTES

# NAME: letters (Hangul too), digits, `_`, `.`, `-`.
_NAMED = re.compile(r"^([\w.\-]+)=(.+)$")


class InputError(ValueError):
    """A missing input path or unusable input: the run stops before any work."""


@dataclass(frozen=True)
class InputSpec:
    source: str
    pattern: str
    include: tuple[str, ...] = ()  # globs a file found in a directory must match (one of), if any
    exclude: tuple[str, ...] = ()  # globs such a file must not match


def parse_input(arg: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> InputSpec:
    named = _NAMED.match(arg)
    if named and not Path(arg).exists():
        return InputSpec(named.group(1), named.group(2), include, exclude)
    name, equals, _ = arg.partition("=")
    if equals and not glob.glob(arg):
        raise InputError(f"input not found: {arg} (in NAME=PATH, NAME may hold only letters, digits, '_', '.' "
                         f"and '-'; got {name!r})")
    return InputSpec(default_source(Path(arg.rstrip("/"))), arg, include, exclude)


def default_source(path: Path) -> str:
    name = path.name if not glob.has_magic(path.name) else path.parent.name
    name = strip_compression_suffix(name)
    return name.split(".")[0] or "corpus"


def expand(pattern: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[Path]:
    """Files named by a path, directory or glob, sorted, each real file once (a glob such as
    `dir/**` names a file under each of its ancestors, symlinks name it again); files found in
    a directory are filtered by `include`/`exclude`. InputError if there are none."""
    if glob.has_magic(pattern):
        paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    else:
        paths = [Path(pattern)]
    if not paths or not paths[0].exists():
        raise InputError(f"input not found: {pattern}")
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for file in _walk(path, include, exclude) if path.is_dir() else [path] if path.is_file() else []:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                files.append(file)
    if not files:
        raise InputError(f"input has no files: {pattern}")
    return files


def _walk(root: Path, include: tuple[str, ...], exclude: tuple[str, ...]) -> list[Path]:
    """The files below `root`, sorted, hidden ones skipped, filtered by the globs (matched against
    the name and the path below `root`); symlinked directories are not entered (they can loop),
    symlinked files are kept."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if name.startswith(".") or not path.is_file():
                continue
            if (include and not _matches(name, relative, include)) or _matches(name, relative, exclude):
                continue
            found.append(path)
    return sorted(found)


def _matches(name: str, relative: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(relative, g) for g in globs)


# File identity for the resume fingerprint: what changes when a file is edited, even in place at
# the same size, read cheaply (a few KiB per file, whatever its size).
_SAMPLE_BLOCKS = 4
_SAMPLE_BYTES = 4096


def file_identity(path: str) -> dict:
    """Size, mtime_ns and a hash of a few blocks spread over the file (its start and end included)."""
    stat = os.stat(path)
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for i in range(_SAMPLE_BLOCKS):
            f.seek(max(0, (stat.st_size - _SAMPLE_BYTES) * i // (_SAMPLE_BLOCKS - 1)))
            digest.update(f.read(_SAMPLE_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample": digest.hexdigest()}


def plan_units(specs: list[InputSpec], fmt: str | None, text_mode: str, unit_bytes: int,
               problems: Problems, *, per_source: dict[str, Counter] | None = None) -> list[Unit]:
    """Every unit of every input, in input order; unreadable archives and empty files are
    reported and skipped (and counted in `per_source`, by source name)."""
    pending: list[Unit] = []
    for spec in specs:
        before = problems.counts.copy()
        for path in expand(spec.pattern, spec.include, spec.exclude):
            pending.extend(_file_units(path, spec.source, fmt, text_mode, unit_bytes, problems))
        if per_source is not None:
            per_source.setdefault(spec.source, Counter()).update(problems.counts - before)
    return [replace(unit, index=i) for i, unit in enumerate(pending)]


def _file_units(path: Path, source: str, fmt: str | None, text_mode: str, unit_bytes: int,
                problems: Problems) -> list[Unit]:
    """The file's units, numbered later by `plan_units` (index -1 until then)."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
    if not magic:
        problems.report("empty_file", str(path), "file is empty; skipped")
        return []
    if magic == ZIP_MAGIC:
        return zip_units(path, source, fmt, problems)
    head = _sniff(path)
    if is_tar(head):
        return tar_units(path, source, fmt, problems, compression_of(magic))
    kind = fmt or detect_format(path.name, head)
    size = path.stat().st_size
    splittable = kind in LINE_FORMATS and (kind == "jsonl" or text_mode == "line") and compression_of(magic) is None
    if not splittable or size <= unit_bytes:
        return [Unit(-1, str(path), source, kind, size)]
    return [Unit(-1, str(path), source, kind, min(unit_bytes, size - start), start=start,
                 end=min(start + unit_bytes, size)) for start in range(0, size, unit_bytes)]


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as raw:
        try:
            return decompressed(raw).read(SNIFF_BYTES)
        except (OSError, EOFError):
            return b""


def check_text_field(units: list[Unit], options: ReadOptions) -> None:
    """OptionError if --text-field was given but some input's format has no fields."""
    fieldless = [u for u in units if u.fmt not in FIELD_FORMATS]
    if options.text_field is not None and fieldless:
        raise OptionError(f"--text-field applies to {', '.join(FIELD_FORMATS)} inputs, but {fieldless[0].where} is "
                          f"read as {fieldless[0].fmt} (pass --format, or --doc-path/--text-path for JSON documents)")


def select_split(units: list[Unit], num_splits: int, split_index: int) -> list[Unit]:
    """Round-robin share `split_index` of `num_splits`: balanced, and a pure function of the unit list."""
    return [u for u in units if u.index % num_splits == split_index]
