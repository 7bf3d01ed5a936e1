"""Near-duplicate removal: the MinHash signature against exact Jaccard, the clustering against a
plain union-find, recall and false removals on injected near-duplicates of real Korean text, and
`python -m data_prep --near-dedup` end to end (workers, kill -9 at each new stage, options)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_prep import near_dedup
from data_prep.cli import main
from data_prep.manifest import summary_table
from data_prep.minhash import BandKeySpill, NearDedupOptions, band_keys, bands_for, collision_probability
from data_prep.near_dedup import cluster
from data_prep.sample import sample_paragraphs
from data_prep.text_stats import code_points
from neardup_corpus import Injected, distinct, inject, jaccard, near_copy, recall_and_loss, reference_drop

REPO = Path(__file__).resolve().parents[1]
ON = NearDedupOptions(True)


def originals(count: int = 240, seed: int = 0) -> list[str]:
    """Distinct multi-paragraph documents of real Korean text."""
    rng = random.Random(seed)
    pool = sample_paragraphs()
    texts = [f"{i}번 기사\n" + "\n".join(rng.sample(pool, rng.randint(6, 14))) for i in range(count * 2)]
    return distinct(texts)[:count]


def test_bands_for_threshold_keeps_fineweb2_at_0_8_and_catches_pairs_above():
    assert bands_for(0.8) == (14, 8)
    for threshold in (0.7, 0.8, 0.85, 0.9):
        bands, rows = bands_for(threshold)
        assert bands * rows <= 112
        assert collision_probability(threshold, bands, rows) >= 0.9
        # one more row would miss more than 10% at the threshold: the choice is the most selective
        assert collision_probability(threshold, 112 // (rows + 1), rows + 1) < 0.9


def test_bin_agreement_estimates_jaccard():
    rng = random.Random(1)
    texts = originals(60)
    errors = []
    for text in texts:
        copy = near_copy(near_copy(text, rng), rng)
        keys = band_keys([text, copy], NearDedupOptions(True, threshold=0.01))  # 112 bands of 1 bin: the bins
        errors.append((keys[:, 0] == keys[:, 1]).mean() - jaccard(text, copy))
    assert abs(np.mean(errors)) < 0.02  # unbiased
    assert np.std(errors) < 0.06  # about sqrt(J(1-J)/112), as 112 independent permutations give


def test_band_keys_do_not_depend_on_batching():
    texts = originals(30) + ["짧다", "", "ab", "짧다"]
    together = band_keys(texts, ON)
    apart = np.concatenate([band_keys([t], ON) for t in texts], axis=1)
    assert np.array_equal(together, apart)
    assert np.array_equal(together[:, -1], together[:, -4])  # an exact copy of a document without 5-grams
    assert not (together[:, -4] == together[:, -2]).any()


@pytest.mark.parametrize("batch_chars", [1 << 18, 500])  # one batch, or many
def test_spilled_keys_are_band_keys_sorted_per_band(tmp_path, monkeypatch, batch_chars):
    monkeypatch.setattr(BandKeySpill, "_BATCH_CHARS", batch_chars)
    texts = originals(30) + ["짧다", "", "ab", "짧다"]
    spill = BandKeySpill(tmp_path / "u.npy", ON)
    for i, text in enumerate(texts):
        code_points(texts[i - 1] if i % 2 else text)  # as the last step leaves the cache: this text or another
        spill.add(text)
    spill.commit()
    keys, order = np.load(tmp_path / "u.npy")
    expected = band_keys(texts, ON)
    assert np.array_equal(keys, np.take_along_axis(expected, order.astype(np.int64), axis=1))
    assert (keys[:, 1:] >= keys[:, :-1]).all()


@pytest.mark.parametrize("chunk", [1 << 22, 7])  # one key range per band, or many
def test_clustering_matches_a_plain_union_find(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(near_dedup, "CHUNK_KEYS", chunk)
    monkeypatch.setattr(near_dedup, "_RESOLVE_BLOCK", 5)
    rng = np.random.default_rng(0)
    keys, files = [], []
    for unit, n in enumerate([40, 0, 25, 60]):
        k = rng.integers(0, 60, (4, n)).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # many collisions
        keys.append(k)
        order = np.argsort(k, axis=1, kind="stable")
        files.append(tmp_path / f"u{unit}.npy")
        np.save(files[-1], np.stack([np.take_along_axis(k, order, axis=1), order.astype(np.uint64)]))
    drop, stats = cluster(files, [k.shape[1] for k in keys], tmp_path / "work")
    expected = np.array(reference_drop(np.concatenate(keys, axis=1).tolist()))
    assert np.array_equal(drop, expected)
    assert stats["docs_removed"] == expected.sum() and stats["documents"] == 125
    assert sum(stats["cluster_sizes"].values()) == stats["clusters"] > 0
    assert cluster(files, [k.shape[1] for k in keys], tmp_path / "work")[1] == stats  # the published result


def spill_keys(tmp_path: Path, docs: list[str], per_unit: int) -> tuple[list[Path], list[int]]:
    files, counts = [], []
    for unit, start in enumerate(range(0, len(docs), per_unit)):
        spill = BandKeySpill(tmp_path / f"u{unit}.lsh.npy", ON)
        for text in docs[start:start + per_unit]:
            spill.add(text)
        spill.commit()
        files.append(tmp_path / f"u{unit}.lsh.npy")
        counts.append(len(docs[start:start + per_unit]))
    return files, counts


def test_recall_and_false_removals_on_injected_near_duplicates(tmp_path):
    corpus = inject(originals(), share=0.5, seed=3)
    files, counts = spill_keys(tmp_path, corpus.docs, 50)
    drop, stats = cluster(files, counts, tmp_path / "work")
    recall, lost, similar = recall_and_loss(corpus, list(drop))
    assert similar > 80
    assert recall >= 0.95, recall
    assert lost <= 0.01, lost
    # every cluster keeps its first document: an original, never one of its copies
    assert not any(drop[i] for i, o in enumerate(corpus.original_of) if o is None and lost == 0)


# ---------------------------------------------------------------- python -m data_prep --near-dedup


def write_sources(directory: Path, seed: int = 0) -> tuple[list[str], Injected]:
    """Two JSONL sources of injected near-duplicates; the second also reposts the first's documents."""
    corpus = inject(originals(160, seed), share=0.5, seed=seed)
    half = len(corpus.docs) // 2
    parts = {"a": corpus.docs[:half], "b": corpus.docs[half:] + [near_copy(d, random.Random(i))
                                                                  for i, d in enumerate(corpus.docs[:20])]}
    args = []
    for name, docs in parts.items():
        (directory / name).mkdir(parents=True)
        with open(directory / name / "docs.jsonl", "w", encoding="utf-8") as f:
            for text in docs:
                f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        args.append(f"{name}={directory / name}")
    return args, corpus


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            and p.name != "manifest.json"}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text("utf-8"))


def run(*args) -> int:
    return main([str(a) for a in args])


COMMON = ["--near-dedup", "--unit-mb", 0.02, "--shard-rows", 40, "--val-fraction", 0.05]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_sources(tmp_path_factory.mktemp("near"))


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    assert run(*sources[0], *COMMON, "-o", out, "--workers", 1) == 0
    return out


def test_near_dedup_end_to_end_counts_and_worker_independence(sources, reference, tmp_path):
    m = manifest(reference)
    assert len(m["inputs"]) > 6  # several units per source
    near = m["near_dedup"]
    assert (near["bands"], near["rows"], near["threshold"]) == (14, 8, 0.8)
    assert f"{near['docs_removed']} of {near['documents']} documents in {near['clusters']} clusters" in summary_table(m)
    removed = {name: s["dropped"].get("near_duplicate", 0) for name, s in m["sources"].items()}
    exact = sum(s["dropped"].get("duplicate", 0) for s in m["sources"].values())
    assert removed["b"] > 20  # includes the reposts of a's documents: dedup spans sources
    assert 0 < exact < near["docs_removed"]  # respacing alone makes exact copies (cleaning squeezes spaces)
    assert sum(removed.values()) + exact == near["docs_removed"]  # exact copies are in the clusters too
    per_source = near["sources"]
    assert sum(s["clusters"] for s in per_source.values()) == near["clusters"]
    assert {name: s["docs_removed"] for name, s in per_source.items()} == \
        {name: removed[name] + m["sources"][name]["dropped"].get("duplicate", 0) for name in removed}
    assert max(s["largest_cluster"] for s in per_source.values()) == near["largest_cluster"]
    for s in m["sources"].values():
        assert s["docs_read"] == s["docs_kept"] + sum(s["dropped"].values())
    out = tmp_path / "w2"
    assert run(*sources[0], *COMMON, "-o", out, "--workers", 2) == 0
    assert output_files(out) == output_files(reference)
    assert manifest(out)["sources"] == m["sources"] and manifest(out)["near_dedup"] == near
    plain = tmp_path / "plain"
    assert run(*sources[0], "--no-near-dedup", *COMMON[1:], "-o", plain) == 0
    assert "near_dedup" not in manifest(plain)
    kept_plain = sum(s["docs_kept"] for s in manifest(plain)["sources"].values())
    assert kept_plain - sum(s["docs_kept"] for s in m["sources"].values()) == sum(removed.values())


def test_other_near_dedup_options_are_refused_without_overwrite(sources, reference, tmp_path, caplog):
    out = tmp_path / "out"
    assert run(*sources[0], *COMMON, "-o", out) == 0
    assert run(*sources[0], *COMMON, "--near-dedup-threshold", 0.9, "-o", out) == 2
    assert "--overwrite" in caplog.text
    assert run(*sources[0], *COMMON, "--near-dedup-threshold", 0.9, "-o", out, "--overwrite") == 0
    assert manifest(out)["near_dedup"]["rows"] > 8
    assert run(*sources[0], *COMMON, "--near-dedup-threshold", 1.5, "-o", tmp_path / "bad") == 2


@pytest.mark.parametrize("fault", ["keys:3", "cluster:2", "resolve"])
def test_kill_during_signatures_or_clustering_then_rerun_is_identical(sources, reference, tmp_path, fault):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "data_prep_fault_entry.py"), *map(str, sources[0]),
                           *map(str, COMMON), "-o", str(out)], env={**os.environ, "FAULT_KILL_AT": fault},
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.returncode == -signal.SIGKILL  # it really died at the fault
    assert not (out / "manifest.json").exists()
    if fault.startswith("keys"):
        assert list((out / ".work").glob("*.lsh.npy.*.tmp"))  # a half-written band-key file
    else:
        assert not (out / ".work" / "near" / "stats.json").exists()
    assert run(*sources[0], *COMMON, "-o", out, "--workers", 2) == 0
    assert output_files(out) == output_files(reference)
    assert manifest(out)["sources"] == manifest(reference)["sources"]


def test_num_splits_parts_merge_with_near_dedup_across_them(sources, reference, tmp_path, caplog):
    parts = [tmp_path / f"p{i}" for i in range(2)]
    for i, part in enumerate(parts):
        assert run(*sources[0], *COMMON, "-o", part, "--num-splits", 2, "--split-index", i) == 0
        assert list((part / ".work").glob("*.lsh.npy"))  # kept for the merge
    alone = sum(manifest(p)["near_dedup"]["docs_removed"] for p in parts)
    assert alone < manifest(reference)["near_dedup"]["docs_removed"]  # copies on the other machine survive alone
    merged = tmp_path / "merged"
    assert run("merge", merged, *parts) == 0
    # one clustering pass over both shares: the same shards as one machine running the whole job
    assert output_files(merged) == output_files(reference)
    m = manifest(merged)
    assert m["sources"] == manifest(reference)["sources"]
    assert m["near_dedup"]["docs_removed"] == manifest(reference)["near_dedup"]["docs_removed"]
    assert not (merged / ".work").exists()
    linked = tmp_path / "linked"
    assert run("merge", linked, *parts, "--no-near-dedup") == 0  # the parts' own shards, as before
    assert sum(s["docs_kept"] for s in manifest(linked)["sources"].values()) > \
        sum(s["docs_kept"] for s in m["sources"].values())
    assert run("merge", tmp_path / "half", parts[1]) == 2  # share 0 missing
    older = manifest(parts[1])
    del older["doc_hash"]  # as a version that hashed documents with BLAKE2b wrote it
    (parts[1] / "manifest.json").write_text(json.dumps(older), "utf-8")
    assert run("merge", tmp_path / "mixed", *parts) == 2  # its exact dedup and draw used other hashes
    assert "the parts differ in doc_hash" in caplog.text


def peak_rss_kb(args: list) -> int:
    """Peak RSS of a fresh `python -m data_prep` process (measured by a wrapper process)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "data_prep", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


def test_peak_memory_of_near_dedup_does_not_grow_with_the_corpus(tmp_path):
    rng = random.Random(0)
    pool = sample_paragraphs()
    sizes = {}
    for name, megabytes in (("small", 2), ("big", 24)):
        path = tmp_path / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            i = 0
            while f.tell() < megabytes * 1e6:
                text = f"{i}번 문서\n" + "\n".join(rng.sample(pool, 8))
                for copy in (text, near_copy(text, rng)) if i % 4 == 0 else (text,):
                    f.write(json.dumps({"text": copy}, ensure_ascii=False) + "\n")
                i += 1
        peak = peak_rss_kb([path, "-o", tmp_path / name, "--near-dedup", "--quality", "off", "--unit-mb", 4])
        sizes[name] = (path.stat().st_size, peak * 1024)
        assert manifest(tmp_path / name)["near_dedup"]["docs_removed"] > 0
    (small, small_peak), (big, big_peak) = sizes["small"], sizes["big"]
    # Holding the documents or their 5-gram sets would cost several times the corpus; the
    # bounded stages cost the same at both sizes.
    assert big_peak - small_peak < 0.25 * (big - small), sizes
