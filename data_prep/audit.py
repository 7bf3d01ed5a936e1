"""`--keep-dropped N`: a few dropped or edited documents per cleaning step, so that a threshold can
be audited on a sample run before a 220 GB one. Workers keep up to N per step and unit in the
unit's counts (so resume reproduces them); the run keeps the first N per step in input order in
OUT/dropped_samples.jsonl, which `data_prep inspect` shows."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from data_prep.atomic import write_bytes
from data_prep.pii import mask_pii
from data_prep.steps import Sample

SAMPLES = "dropped_samples.jsonl"
MAX_CHARS = 1000  # of each sample's text


def unit_samples(samples: list[Sample], source: str, mask: bool) -> list[dict]:
    """The JSON form kept in a unit's counts. Dropped documents were never PII-masked (masking is
    the last step), so they are masked here unless --pii keep."""
    out = []
    for sample in samples:
        text = sample.text[:MAX_CHARS]
        out.append({"step": sample.step, "source": source, "text": mask_pii(text, Counter()) if mask else text})
    return out


def write_samples(out: Path, metas: list[dict], per_step: int) -> int:
    """Write the first `per_step` samples of each step over `metas` (in unit order); return how many."""
    taken: dict[str, int] = {}
    lines = []
    for meta in metas:
        for sample in meta.get("samples", []):
            if taken.get(sample["step"], 0) < per_step:
                taken[sample["step"]] = taken.get(sample["step"], 0) + 1
                lines.append(json.dumps(sample, ensure_ascii=False) + "\n")
    write_bytes(out / SAMPLES, "".join(lines).encode("utf-8"))
    return len(lines)


def show_samples(directory: Path, per_step: int, width: int) -> list[str]:
    """Up to `per_step` samples per step, for `data_prep inspect`."""
    path = directory / SAMPLES
    if not path.exists():
        return []
    shown: dict[str, int] = {}
    lines = []
    for line in path.read_text("utf-8").splitlines():
        sample = json.loads(line)
        if shown.get(sample["step"], 0) < per_step:
            shown[sample["step"]] = shown.get(sample["step"], 0) + 1
            text = sample["text"][:width].replace("\n", "\\n") + ("..." if len(sample["text"]) > width else "")
            lines.append(f"--- {sample['step']} source={sample['source']}\n{text}")
    return lines
