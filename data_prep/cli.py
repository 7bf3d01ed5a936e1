"""Command line: `python -m data_prep [prepare] ...`, `inspect DIR`, `merge OUT PART...`."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from data_prep.audit import SAMPLES
from data_prep.clean import CleanOptions
from data_prep.decontam import EvalFileError, eval_set
from data_prep.inputs import InputError, parse_input
from data_prep.malloc import fix_mmap_threshold
from data_prep.merge import MergeError, merge
from data_prep.merge_near import NearMergeError
from data_prep.minhash import NearDedupOptions
from data_prep.options import DEFAULT_QUALITY, OptionError, parse_quality
from data_prep.pack import PackOptions
from data_prep.validation_size import MIN_VAL_DOCS, SMALL_CORPUS_BYTES
from data_prep.prepare import OutputConflict, PrepareConfig, WorkerDied, prepare
from data_prep.readers import FORMATS, ReadOptions, UnknownFormat
from data_prep.readers.base import MAX_DOC_BYTES
from data_prep.readers.json_docs import AIHUB_PRESETS
from data_prep.shard_format import ShardFormatError
from data_prep.span_lengths import raw_length_for_inputs
from data_prep.sample import sample_inputs

log = logging.getLogger("data_prep")
COMMANDS = ("prepare", "inspect", "merge")


def _prepare_parser(sub) -> None:
    p = sub.add_parser("prepare", help="corpora -> packed shards (the default command)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="*", help="PATH or NAME=PATH (file, directory or glob); NAME is the source column")
    p.add_argument("-o", "--output", required=True, type=Path, help="output directory")
    p.add_argument("--konlpy-sample", action="store_true", help="add the Korean constitution and bills konlpy ships")
    g = p.add_argument_group("reading")
    g.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="directory inputs: read only files whose name or path below the directory matches (repeatable)")
    g.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="directory inputs: skip files whose name or path below the directory matches (repeatable)")
    g.add_argument("--format", choices=FORMATS, help="reader for every input (default: detected per file)")
    g.add_argument("--text-field", help="jsonl/csv/tsv/parquet/arrow text field (default 'text'): a dotted path for "
                   "jsonl, a column (or comma-separated columns, joined by newlines) for csv/tsv")
    g.add_argument("--doc-path", help="modu/aihub: JSON path of the documents, e.g. 'documents[]'")
    g.add_argument("--text-path", help="modu/aihub: JSON path of a document's strings, e.g. 'text[][].sentence'")
    g.add_argument("--aihub-preset", choices=sorted(AIHUB_PRESETS), help="a known AIHub layout (sets both paths)")
    g.add_argument("--text-mode", choices=("line", "block", "file"), default="line",
                   help="text: one document per line, per blank-line-separated block, or per file")
    g.add_argument("--invalid-utf8", choices=("replace", "drop"), default="replace",
                   help="records with invalid UTF-8 (or an escaped lone surrogate in JSON): replace bad bytes with "
                   "U+FFFD, or drop the record (files read "
                   "by a streaming parser, such as the Namuwiki dump, are always repaired)")
    g.add_argument("--max-doc-bytes", type=int, default=MAX_DOC_BYTES,
                   help="longest line, record or document read; a longer one is dropped and reported. It bounds "
                   "memory: see the README")
    g = p.add_argument_group("cleaning")
    g.add_argument("--min-chars", type=int, default=1, help="drop documents shorter than this (characters)")
    g.add_argument("--min-hangul-ratio", type=float, default=0.0,
                   help="drop documents whose Hangul share is lower (0 = off)")
    g.add_argument("--deid-tags", choices=("keep", "remove"), default="keep",
                   help="Modu de-identification tags (&name&)")
    g = p.add_argument_group("near-duplicates")
    g.add_argument("--near-dedup", action=argparse.BooleanOptionalAction, default=True,
                   help="remove near-duplicate documents (MinHash LSH over character 5-grams without whitespace; "
                   "the first document of each cluster, in input order, is kept)")
    g.add_argument("--near-dedup-threshold", type=float, default=0.8, metavar="J",
                   help="Jaccard similarity of the 5-gram sets from which documents count as near-duplicates "
                   "(0.8: FineWeb-2's 14 bands of 8 hashes)")
    g = p.add_argument_group("corpus quality")
    # A list default: values given are appended to it, and the last bare preset wins.
    g.add_argument("--quality", action="append", default=[DEFAULT_QUALITY], metavar="SPEC",
                   help="filter presets: PRESET for every source, NAME=PRESET for one, comma-separated or "
                   "repeated (e.g. 'curated,kcbert=web'); presets: off, curated (edited text: drops only "
                   "junk), web (crawled pages and comments: FineWeb-2's Korean thresholds)")
    g.add_argument("--decontaminate", action="extend", nargs="+", default=[], metavar="PATH",
                   help="evaluation files (text: one passage per line; JSON/JSONL/Parquet through the input "
                   "readers): document lines sharing 16 characters (whitespace ignored) with a passage are removed. "
                   "Give the inputs before this option")
    g.add_argument("--decontaminate-field", metavar="FIELD",
                   help="text field of JSON/Parquet evaluation files (none: the --text-field value)")
    g.add_argument("--keep-dropped", type=int, default=0, metavar="N",
                   help=f"write the first N dropped or edited documents of each step to OUTPUT/{SAMPLES} "
                   "(PII-masked unless --pii keep; shown by 'data_prep inspect'); 0: none")
    g.add_argument("--pii", choices=("mask", "keep"), default="mask",
                   help="replace resident registration, phone and card numbers, e-mail and IP addresses by "
                   "[주민번호], [전화번호], [카드번호], [이메일], [IP주소]")
    g = p.add_argument_group("packing and output")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--chunk-bytes", type=int, default=1024, help="raw bytes per chunk")
    size.add_argument("--input-length", type=int,
                      help="chunk size whose span-corrupted inputs are exactly N (1024 -> 1193)")
    g.add_argument("--cut-window", type=int, help="bytes before a chunk's end searched for a newline, sentence end or "
                   "space (default: 1%% of the chunk, which keeps chunks >= 99%% full)")
    g.add_argument("--separator", default="\\n", help="joins documents (escapes such as \\n are decoded)")
    val = g.add_mutually_exclusive_group()
    val.add_argument("--val-fraction", type=float, default=0.001, help="share of documents held out for validation")
    val.add_argument("--val-docs", type=int, help="hold out exactly this many documents instead")
    g.add_argument("--min-val-docs", type=int, default=MIN_VAL_DOCS,
                   help=f"inputs up to {SMALL_CORPUS_BYTES >> 20} MiB: hold out at least this many documents (at most a "
                        f"tenth of them) when --val-fraction gives fewer (default {MIN_VAL_DOCS}; 0: off)")
    g.add_argument("--shard-rows", type=int, default=131072, help="chunks per shard file")
    g = p.add_argument_group("scale")
    g.add_argument("--workers", type=int, default=1, help="processes")
    g.add_argument("--num-splits", type=int, default=1, help="machines sharing the job")
    g.add_argument("--split-index", type=int, default=0, help="this machine's share, 0-based")
    g.add_argument("--unit-mb", type=float, default=16, help="big line-based files are cut into units of this size")
    g.add_argument("--strict", action="store_true", help="exit non-zero (and write no output) on any input problem")
    g.add_argument("--overwrite", action="store_true", help="replace a different finished or unfinished run in OUTPUT")
    g.add_argument("--keep-work", action="store_true", help="keep OUTPUT/.work (the per-unit spills) after success")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="data_prep", description="Korean corpora -> cleaned, deduplicated, packed "
                                     "Arrow shards for byte-level T5 pretraining. The command defaults to 'prepare'.")
    sub = parser.add_subparsers(dest="command", required=True)
    _prepare_parser(sub)
    p = sub.add_parser("inspect", help="print a finished output's manifest summary and sample chunks")
    p.add_argument("directory", type=Path)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--verify", action="store_true", help="also check every shard's sha256 against the manifest")
    p = sub.add_parser("merge", help="combine finished outputs (e.g. per machine) into one dataset")
    p.add_argument("output", type=Path)
    p.add_argument("parts", nargs="+", type=Path)
    p.add_argument("--near-dedup", action=argparse.BooleanOptionalAction, default=True,
                   help="parts of a --num-splits --near-dedup run: remove near-duplicates across the parts (needs "
                   "their .work directories); --no-near-dedup only links their shards")
    return parser


def _unescape(text: str) -> str:
    """Decode backslash escapes (\\n, \\t, \\u2028) and keep any other character as typed."""
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as err:
        raise OptionError(f"--separator {text!r}: {err.reason}") from None


# Numeric options and the least value each takes; values below it used to end in a traceback
# deep in the run (--unit-mb 0, --chunk-bytes 4) or never end (--shard-rows 0).
_MINIMUMS = {"max_doc_bytes": 1, "shard_rows": 1, "chunk_bytes": 8, "workers": 1, "val_docs": 0}


def _check_ranges(args: argparse.Namespace) -> None:
    """OptionError naming the first option whose value is out of its range."""
    for name, least in _MINIMUMS.items():
        value = getattr(args, name)
        if value is not None and value < least:
            raise OptionError(f"--{name.replace('_', '-')} must be at least {least:g}, not {value:g}")
    if args.unit_mb * 2**20 < 1:
        raise OptionError(f"--unit-mb must be more than 0, not {args.unit_mb:g}")
    if not 0 <= args.val_fraction < 1:
        raise OptionError(f"--val-fraction must be in [0, 1), not {args.val_fraction:g}")
    if not 0 <= args.min_hangul_ratio <= 1:
        raise OptionError(f"--min-hangul-ratio must be in [0, 1], not {args.min_hangul_ratio:g}")
    existing = next(p for p in [args.output.absolute(), *args.output.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise OptionError(f"--output {args.output}: {existing} is a file, not a directory")


def _config(args: argparse.Namespace, argv: list[str]) -> PrepareConfig:
    _check_ranges(args)
    if args.num_splits < 1 or not 0 <= args.split_index < args.num_splits:
        raise InputError(f"--split-index must be in [0, {args.num_splits})")
    inputs = list(args.inputs) + (sample_inputs() if args.konlpy_sample else [])
    if not inputs:
        hint = "; paths after --decontaminate are evaluation files: give the inputs before it" \
            if args.decontaminate else ""
        raise InputError(f"no inputs given (pass paths or --konlpy-sample){hint}")
    doc_path, text_path = AIHUB_PRESETS[args.aihub_preset] if args.aihub_preset else (args.doc_path, args.text_path)
    if not 0 < args.near_dedup_threshold < 1:
        raise OptionError(f"--near-dedup-threshold must be between 0 and 1, not {args.near_dedup_threshold}")
    chunk_bytes = raw_length_for_inputs(args.input_length) if args.input_length else args.chunk_bytes
    if chunk_bytes < _MINIMUMS["chunk_bytes"]:
        raise OptionError(f"--input-length {args.input_length} makes chunks of {chunk_bytes} bytes, fewer than 8")
    specs = [parse_input(arg, tuple(args.include), tuple(args.exclude)) for arg in inputs]
    quality, quality_for = parse_quality(args.quality, {spec.source for spec in specs})
    read = ReadOptions(args.text_field, doc_path, text_path, args.text_mode, args.invalid_utf8, args.max_doc_bytes)
    evals = tuple(args.decontaminate)
    digest = eval_set(evals, replace(read, text_field=args.decontaminate_field or args.text_field)).digest \
        if evals else ""
    return PrepareConfig(
        inputs=specs, output=args.output, format=args.format,
        read=read,
        clean=CleanOptions(args.min_chars, args.min_hangul_ratio, args.deid_tags, quality, quality_for, args.pii,
                           evals, digest, args.keep_dropped),
        pack=PackOptions(chunk_bytes, args.cut_window, _unescape(args.separator).encode("utf-8"),
                         0.0 if args.val_docs is not None else args.val_fraction, args.val_docs, args.shard_rows,
                         args.min_val_docs),
        near=NearDedupOptions(args.near_dedup, args.near_dedup_threshold),
        workers=args.workers, num_splits=args.num_splits, split_index=args.split_index,
        unit_bytes=int(args.unit_mb * 2**20), strict=args.strict, overwrite=args.overwrite, keep_work=args.keep_work,
        command=["data_prep", *argv])


def main(argv: list[str] | None = None) -> int:
    fix_mmap_threshold()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["prepare", *argv]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[data_prep] %(message)s", stream=sys.stderr)
    try:
        if args.command == "inspect":
            from data_prep.inspect_cmd import inspect

            print(inspect(args.directory, args.samples, verify=args.verify))
            return 0
        if args.command == "merge":
            merge(args.output, args.parts, ["data_prep", *argv], args.near_dedup)
            log.info("merged %d parts into %s", len(args.parts), args.output)
            return 0
        return prepare(_config(args, argv))
    except (InputError, UnknownFormat, OutputConflict, MergeError, NearMergeError, ShardFormatError,
            FileNotFoundError, PermissionError, OptionError, EvalFileError, WorkerDied) as err:
        log.error("error: %s", err)  # a mistake in the command or its inputs: one line, exit 2
        return 2
