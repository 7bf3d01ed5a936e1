"""The evaluation's outputs: results.json, results.md (one row per model, side by side) and
predictions.jsonl (every generated answer beside its target, to look at the errors)."""
from __future__ import annotations

import json
from pathlib import Path

from data_prep.atomic import write_bytes, write_json

RESULTS_JSON = "results.json"
RESULTS_TABLE = "results.md"
PREDICTIONS = "predictions.jsonl"
METRIC_NAMES = {"macro_f1": "macro F1", "accuracy": "accuracy", "pearson": "Pearson r", "f1": "F1",
                "exact_match": "EM", "rouge_w": "ROUGE-W"}
COUNTS = ("examples", "invalid_predictions", "truncated_inputs")


def markdown_table(results: dict[str, dict[str, dict]], tasks: list[str], metrics: dict[str, tuple[str, ...]]) -> str:
    """Scores (percent) per model and task metric, then the counts that qualify them."""
    columns = [(task, metric) for task in tasks for metric in metrics[task]]
    lines = ["| model | " + " | ".join(f"{t} {METRIC_NAMES[m]}" for t, m in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for model, per_task in results.items():
        lines.append(f"| {model} | " + " | ".join(f"{per_task[t][m]:.2f}" for t, m in columns) + " |")
    lines += ["", "| model | task | " + " | ".join(c.replace("_", " ") for c in COUNTS) + " |",
              "|---|---|" + "---:|" * len(COUNTS)]
    for model, per_task in results.items():
        for task in tasks:
            lines.append(f"| {model} | {task} | " + " | ".join(str(per_task[task][c]) for c in COUNTS) + " |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict[str, dict[str, dict]], tasks: list[str],
                  metrics: dict[str, tuple[str, ...]], protocol: dict, predictions: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in predictions)
    write_bytes(out / PREDICTIONS, lines.encode("utf-8"))
    write_json(out / RESULTS_JSON, {"protocol": protocol, "results": results})
    write_bytes(out / RESULTS_TABLE, markdown_table(results, tasks, metrics).encode("utf-8"))
