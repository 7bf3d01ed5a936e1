"""What launch/gpu_check.py reports: one record per configuration from its metrics.jsonl, the
bf16-against-float32 comparison, the issue's targets, and the JSON file and markdown table
(both rewritten atomically after every configuration, so a run cut off keeps what it measured).
"""
from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

from data_prep.atomic import write_bytes, write_json
from pretrain.gpu_matrix import OK, SKIPPED, Setting

# Every configuration's record has these keys (None where a figure does not apply or was not measured).
MEASURES = ("examples_per_s", "input_bytes_per_s", "model_tflops", "mfu", "data_wait_fraction", "peak_mem_gb",
            "memory_kind", "loss", "losses", "steps", "measured_steps")
RUN_FIELDS = ("setup_s", "train_s", "flops_per_step", "peak_reserved_gb", "memory_left_gb")
TARGETS = {"mfu": 0.45, "byt5_speedup": 3.0, "micro_batch": 32, "data_wait_fraction": 0.01, "bf16_loss_rel": 0.01}


def summarize(records: list[dict], warmup: int) -> dict[str, Any]:
    """Medians over the training steps after `warmup` (all steps if there are no more), the mean
    data wait, the peak memory and the last step's loss."""
    train = [r for r in records if r.get("kind") == "train"]
    measured = train[warmup:] or train
    out: dict[str, Any] = dict.fromkeys(MEASURES)
    out.update(steps=len(train), measured_steps=len(measured), losses={r["step"]: r["loss"] for r in train})
    if not train:
        return out
    for key in ("examples_per_s", "input_bytes_per_s", "model_tflops", "mfu"):
        values = [r[key] for r in measured if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["data_wait_fraction"] = statistics.fmean(r.get("data_wait_fraction", 0.0) for r in measured)
    gpu = [r["peak_mem_gb"] for r in train if "peak_mem_gb" in r]
    out["peak_mem_gb"] = max(gpu) if gpu else max(r.get("peak_rss_gb", 0.0) for r in train)
    out["memory_kind"] = "gpu_allocated" if gpu else "cpu_rss"
    out["loss"] = train[-1]["loss"]
    return out


def skipped(setting: Setting, reason: str) -> dict[str, Any]:
    return {"name": setting.name, "setting": dataclasses.asdict(setting), "status": SKIPPED, "reason": reason, **dict.fromkeys(MEASURES),
            **dict.fromkeys(RUN_FIELDS)}


def reference(results: list[dict]) -> dict[str, Any] | None:
    """bf16 against float32 on the same seed, data and steps (the first two configurations)."""
    pair = results[:2]
    if len(pair) < 2 or any(r["status"] != OK for r in pair) or pair[1]["setting"]["dtype"] != "fp32":
        return None
    bf16, fp32 = (dict(r["losses"]) for r in pair)
    steps = sorted(set(bf16) & set(fp32), key=int)
    if not steps:
        return None
    rel = [abs(bf16[s] - fp32[s]) / abs(fp32[s]) for s in steps]
    return {"setting": pair[0]["name"], "steps": len(steps), "bf16_losses": [bf16[s] for s in steps],
            "fp32_losses": [fp32[s] for s in steps], "max_rel_diff": max(rel), "final_rel_diff": rel[-1]}


def targets(results: list[dict], ref: dict | None) -> dict[str, Any]:
    """The issue's targets against what was measured (None: not measured in this run)."""
    ran = [r for r in results if r["status"] == OK and r["setting"]["dtype"] == "bf16" and r["examples_per_s"]]
    gbswt5 = max((r for r in ran if r["setting"]["model"] == "gbswt5"), key=lambda r: r["examples_per_s"], default=None)
    byt5 = max((r for r in ran if r["setting"]["model"] == "byt5"), key=lambda r: r["examples_per_s"], default=None)
    fitting = [r["setting"]["micro"] for r in ran if r["setting"]["model"] == "gbswt5"]
    figures = {
        "mfu": gbswt5["mfu"] if gbswt5 else None,
        "byt5_speedup": gbswt5["examples_per_s"] / byt5["examples_per_s"] if gbswt5 and byt5 else None,
        "micro_batch": max(fitting, default=None),
        "data_wait_fraction": max((r["data_wait_fraction"] for r in ran), default=None),
        "bf16_loss_rel": ref["max_rel_diff"] if ref else None,
    }
    lower_is_better = {"data_wait_fraction", "bf16_loss_rel"}
    met = {k: None if v is None else (v < TARGETS[k] if k in lower_is_better else v >= TARGETS[k])
           for k, v in figures.items()}
    return {"best_gbswt5": gbswt5["name"] if gbswt5 else None, "best_byt5": byt5["name"] if byt5 else None,
            "figures": figures, "targets": TARGETS, "met": met}


def _cell(value: Any, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def markdown(doc: dict) -> str:
    head = doc["header"]
    lines = [f"# gpu_check: {head['device']}, {head['date']}", "",
             f"torch {head['torch']}, transformers {head['transformers']}, deepspeed {head['deepspeed']}; "
             f"dense bf16 peak {_cell(head['peak_tflops'], '.0f') or 'unknown'} TFLOP/s; inputs {head['input_length']} "
             f"bytes; {head['steps']} steps, the first {head['warmup']} not measured; "
             f"{doc['elapsed_s']:.0f} s of a {head['budget_s']:.0f} s budget{'' if doc['finished'] else ' (running)'}", "",
             "| configuration | status | examples/s | input bytes/s | model TFLOP/s | MFU | peak GiB | data wait "
             "| loss at last step | setup s | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["configs"]:
        if r["status"] == SKIPPED:
            continue
        mfu = "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        wait = "" if r["data_wait_fraction"] is None else f"{100 * r['data_wait_fraction']:.2f}%"
        status = r["status"] if r["status"] == OK else f"{r['status']}: {r['reason']}"
        lines.append(f"| {r['name']} | {status} | {_cell(r['examples_per_s'], '.2f')} | "
                     f"{_cell(r['input_bytes_per_s'], '.3g')} | {_cell(r['model_tflops'], '.1f')} | {mfu} | "
                     f"{_cell(r['peak_mem_gb'], '.1f')} | {wait} | {_cell(r['loss'], '.4f')} | "
                     f"{_cell(r['setup_s'], '.1f')} | {_cell(r['train_s'], '.1f')} |")
    ref = doc["reference"]
    lines += ["", "bf16 against float32: " + (
        f"{ref['setting']}, {ref['steps']} steps, largest relative loss difference {ref['max_rel_diff']:.2%}, "
        f"at the last step {ref['final_rel_diff']:.2%}" if ref else "not measured")]
    met = doc["targets"]["met"]
    lines += ["", "targets: " + ", ".join(f"{k} {_cell(v, '.4g') or 'n/a'} "
                                          f"({'not measured' if met[k] is None else 'met' if met[k] else 'missed'})"
                                          for k, v in doc["targets"]["figures"].items())]
    skips = [r for r in doc["configs"] if r["status"] == SKIPPED]
    if skips:
        lines += ["", "Skipped:"] + [f"- {r['name']}: {r['reason']}" for r in skips]
    return "\n".join(lines) + "\n"


def write_report(directory: Path, header: dict, results: list[dict], elapsed_s: float, finished: bool) -> dict:
    """gpu_check.json and gpu_check.md in `directory`, each replaced atomically."""
    ref = reference(results)
    doc = {"header": header, "elapsed_s": elapsed_s, "finished": finished, "configs": results, "reference": ref,
           "targets": targets(results, ref)}
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "gpu_check.json", doc)
    write_bytes(directory / "gpu_check.md", markdown(doc).encode("utf-8"))
    return doc
