"""Archive inputs: the members of zip and tar files (plain or gzip/bz2/xz-compressed) as units of
work, each read like a file of its own (format detected per member, compression inside too).

A tar member is read at the offset recorded here, so a plain .tar costs a seek per member; in a
compressed tar the stream is decompressed up to the member each time (big ones: unpack first).
"""
from __future__ import annotations

import tarfile
import zipfile
import zlib
from pathlib import Path

from data_prep.problems import Problems
from data_prep.readers import Unit, detect_format
from data_prep.readers.compression import decompressed
from data_prep.readers.detect import SNIFF_BYTES


def is_tar(head: bytes) -> bool:
    """Whether `head`, a file's first decompressed bytes, starts a POSIX (ustar) tar archive."""
    return head[257:262] == b"ustar"


def _hidden(name: str) -> bool:
    return any(part.startswith((".", "__MACOSX")) for part in Path(name).parts)


def zip_units(path: Path, source: str, fmt: str | None, problems: Problems) -> list[Unit]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        problems.report("truncated_archive", str(path), f"unreadable zip ({err}); skipped")
        return []
    units = []
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir() or _hidden(info.filename):
                continue
            if info.file_size == 0:
                problems.report("empty_file", f"{path}::{info.filename}", "archive member is empty; skipped")
                continue
            try:
                with archive.open(info) as member:
                    member_head = decompressed(member).read(SNIFF_BYTES)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                problems.report("corrupt_member", f"{path}::{info.filename}", f"unreadable member ({err}); skipped")
                continue
            kind = fmt or detect_format(info.filename, member_head)
            units.append(Unit(-1, str(path), source, kind, info.compress_size, member=info.filename, archive="zip"))
    return units


def tar_units(path: Path, source: str, fmt: str | None, problems: Problems, compression: str | None) -> list[Unit]:
    """The regular members of a tar, in archive order (one pass over it); a damaged archive is
    reported and the members before the damage are kept."""
    if compression == "zstd":  # tarfile cannot seek in zstd (Python < 3.14)
        problems.report("unsupported_archive", str(path), "a zstd-compressed tar cannot be read member by member; "
                        "unpack it, or recompress it with gzip; skipped")
        return []
    units = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for info in archive:
                where = f"{path}::{info.name}"
                if not info.isreg() or _hidden(info.name):
                    continue
                if info.size == 0:
                    problems.report("empty_file", where, "archive member is empty; skipped")
                    continue
                head = decompressed(archive.extractfile(info)).read(SNIFF_BYTES)
                kind = fmt or detect_format(info.name, head)
                units.append(Unit(-1, str(path), source, kind, info.size, member=info.name, archive="tar",
                                  member_offset=info.offset_data))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        problems.report("truncated_archive", str(path), f"unreadable tar ({err}); the members after the damage "
                        "are skipped")
    return units
