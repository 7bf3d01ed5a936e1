"""numba's kernels are loaded once, before the workers fork (extract.load_kernels): a unit's time
is its documents' work, and a run without compiled steps never imports numba."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from data_prep.clean import CleanOptions
from data_prep.extract import _REHEARSAL, ExtractJob, document_steps, extract_unit, load_kernels
from data_prep.minhash import NearDedupOptions
from data_prep.quality import PRESETS
from data_prep.readers import ReadOptions, Unit
from data_prep.sample import sample_paragraphs
from data_prep.steps import Pipeline

ROOT = Path(__file__).resolve().parents[1]


def loaded_kernels() -> dict[str, int]:
    """Each data_prep kernel's number of compiled (or cache-loaded) signatures."""
    return {f"{name}.{attr}": len(value.signatures) for name, module in list(sys.modules.items())
            if name.startswith("data_prep.") for attr, value in vars(module).items()
            if isinstance(value, numba.core.registry.CPUDispatcher)}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_keeps_the_rehearsal_documents_through_every_step(preset):
    # Else a step after the one that drops them is not rehearsed (and the band keys never are).
    clean = CleanOptions(quality=preset, pii="mask")
    pipeline = Pipeline.of(document_steps(Unit(0, "x", "s", "jsonl", 1), clean, kernels=True))
    kept = [pipeline(text) for text in _REHEARSAL]
    short = kept.pop()
    assert all(kept) and pipeline.counts.edits["pii.phone"] == 1 and pipeline.counts.edits["pii.email"] == 1
    assert (pipeline.counts.edits["repeated_chars"] == 1) == (preset == "web")
    assert (short is None) == (preset == "web")  # web's minimum length: web never takes the short path


@pytest.mark.parametrize("preset", ["curated", "web"])
def test_after_load_kernels_a_unit_of_real_text_loads_no_kernel(tmp_path, preset):
    paragraphs = sample_paragraphs()
    corpus = tmp_path / "c.jsonl"
    with open(corpus, "w", encoding="utf-8") as out:
        for i in range(60):
            text = "\n".join(paragraphs[i % len(paragraphs):][:3]) + f"\n문의 010-{1000 + i}-5678 ㅋㅋㅋㅋㅋ  \u00a0끝"
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    evals = tmp_path / "eval.txt"
    lines = [line for paragraph in paragraphs[:3] for line in paragraph.split("\n")]  # the first document's
    evals.write_text(max(lines, key=lambda line: sum("가" <= ch <= "힣" for ch in line)) + "\n", "utf-8")
    clean = CleanOptions(quality=preset, pii="mask", decontaminate=(str(evals),))
    near = NearDedupOptions(enabled=True)
    unit = Unit(0, str(corpus), "c", "jsonl", corpus.stat().st_size)
    load_kernels([unit], clean, near)
    before = loaded_kernels()
    meta = extract_unit(ExtractJob(unit, ReadOptions(), clean, tmp_path, near))
    assert meta["docs_clean"] > 0 and meta["edits"]["pii.phone"] > 0
    assert any(key.startswith("decontaminate.") for key in meta["edits"])
    assert len(before) > 10 and loaded_kernels() == before


@pytest.mark.parametrize("flags, loaded", [([], True), (["--quality", "off", "--pii", "keep", "--no-near-dedup"], False)])
def test_the_main_process_loads_the_kernels_before_forking_workers_only_when_steps_are_compiled(tmp_path, flags,
                                                                                                 loaded):
    """With compiled steps (the defaults), the workers inherit loaded kernels instead of each
    paying numba's ~1 s start and its cache loads; without any, numba is never imported."""
    inputs = []
    for name in ("a", "b"):
        inputs.append(str(tmp_path / f"{name}.txt"))
        Path(inputs[-1]).write_text("".join(f"{name} 문서 {i}번째 줄입니다.\n" for i in range(50)), "utf-8")
    probe = (f"import sys; from data_prep.cli import main; code = main([*{inputs!r}, '-o', {str(tmp_path / 'out')!r}, "
             f"'--workers', '2', *{flags!r}]); kernels = sys.modules.get('data_prep.clean_kernels'); "
             "print(code, 'numba' in sys.modules, bool(kernels and kernels.rewrite.signatures))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(loaded), str(loaded)]
