"""KLUE tasks as text-to-text: prefixes, label sets, lengths, and records -> examples.

Records come in two shapes: KLUE's own release (`klue-ynat-v1.1_train.json`: labels as strings,
MRC nested as data[].paragraphs[].qas[]) and the hub's `klue` dataset (class labels as integers,
one MRC question per row). `hub_record` turns a hub row into the release's shape, so there is one
reader of fields and one check of labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator


class DataError(ValueError):
    """Bad evaluation data; the message is one line naming the file, record and field."""


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...] | None  # the closed label set; None: an open target (a score, a span)
    max_input_bytes: int  # default input budget: the task's longest inputs fit
    max_target_bytes: int  # generation budget (bytes; EOS comes on top)
    metrics: tuple[str, ...]


# Label names and order are KLUE's (and the hub dataset's ClassLabel names).
YNAT_LABELS = ("IT과학", "경제", "사회", "생활문화", "세계", "스포츠", "정치")
NLI_LABELS = ("entailment", "neutral", "contradiction")
STS_THRESHOLD = 3.0  # KLUE's binary label: similar when the score is at least 3.0

TASKS: dict[str, Task] = {
    "ynat": Task("ynat", YNAT_LABELS, 256, max(len(x.encode()) for x in YNAT_LABELS), ("macro_f1",)),
    "nli": Task("nli", NLI_LABELS, 768, max(len(x.encode()) for x in NLI_LABELS), ("accuracy",)),
    "sts": Task("sts", None, 512, 3, ("pearson", "f1")),
    # KLUE MRC contexts run to about 6,800 bytes; question and prefix come on top.
    "mrc": Task("mrc", None, 7680, 256, ("exact_match", "rouge_w")),
}


@dataclass
class Example:
    guid: str
    source: str  # the model's input text, prefix included
    target: str  # what the model learns to generate
    gold: Any  # label string (ynat, nli), (score, binary) (sts), answer texts (mrc)


def _field(record: Any, name: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(record, dict):
        raise DataError(f"{where}: a record must be a JSON object, not {type(record).__name__}")
    if name not in record:
        raise DataError(f"{where}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DataError(f"{where}: field {name!r} is {type(value).__name__}, expected {getattr(kind, '__name__', kind)}")
    return value


def _label(record: dict, name: str, labels: tuple[str, ...], where: str) -> str:
    value = _field(record, name, where)
    if value not in labels:
        raise DataError(f"{where}: field {name!r} is {value!r}, not one of the task's labels {list(labels)}")
    return value


def sts_target(score: float) -> str:
    """The similarity score as the model writes it: one decimal, as KLUE's `label` is rounded."""
    return f"{score:.1f}"


def _score(labels: dict, where: str) -> tuple[float, int]:
    score = _field(labels, "label", f"{where} labels", (int, float))
    if not 0.0 <= score <= 5.0 or math.isnan(score):
        raise DataError(f"{where}: field 'labels.label' is {score}, outside KLUE STS's 0-5 scale")
    binary = labels.get("binary-label", int(labels.get("real-label", score) >= STS_THRESHOLD))
    if binary not in (0, 1):
        raise DataError(f"{where}: field 'labels.binary-label' is {binary!r}, not 0 or 1")
    return float(score), int(binary)


def example(task: Task, record: dict, where: str) -> Example:
    """One example from a record in the KLUE release's shape (MRC: one flattened question)."""
    guid = str(record.get("guid", where)) if isinstance(record, dict) else where
    if task.name == "ynat":
        label = _label(record, "label", task.labels, where)
        return Example(guid, f"ynat title: {_field(record, 'title', where)}", label, label)
    if task.name == "nli":
        label = _label(record, "gold_label", task.labels, where)
        text = f"nli premise: {_field(record, 'premise', where)} hypothesis: {_field(record, 'hypothesis', where)}"
        return Example(guid, text, label, label)
    if task.name == "sts":
        score, binary = _score(_field(record, "labels", where, dict), where)
        text = f"sts sentence1: {_field(record, 'sentence1', where)} sentence2: {_field(record, 'sentence2', where)}"
        return Example(guid, text, sts_target(score), (score, binary))
    context = _field(record, "context", where)
    answers = [_field(a, "text", f"{where} answers[{i}]") for i, a in enumerate(_field(record, "answers", where, list))]
    if record.get("is_impossible", False) or not answers:
        answers = [""]  # unanswerable: the model learns to answer nothing
    # The question goes first, so an input cut to --max-input-bytes loses the end of the context.
    return Example(guid, f"mrc question: {_field(record, 'question', where)} context: {context}", answers[0], answers)


def mrc_questions(document: dict, where: str) -> Iterator[tuple[dict, str]]:
    """(flattened question record, where) for every question of one KLUE release MRC document."""
    for p, paragraph in enumerate(_field(document, "paragraphs", where, list)):
        context = _field(paragraph, "context", f"{where} paragraphs[{p}]")
        for q, qa in enumerate(_field(paragraph, "qas", f"{where} paragraphs[{p}]", list)):
            at = f"{where} paragraphs[{p}] qas[{q}]"
            yield {**qa, "context": context} if isinstance(qa, dict) else qa, at


def release_examples(task: Task, content: Any, where: str) -> list[Example]:
    """The examples of one KLUE release file's parsed JSON."""
    if task.name == "mrc":
        if not isinstance(content, dict) or not isinstance(content.get("data"), list):
            raise DataError(f"{where}: a KLUE MRC file is an object with a 'data' list (SQuAD layout)")
        return [example(task, qa, at) for d, doc in enumerate(content["data"])
                for qa, at in mrc_questions(doc, f"{where} data[{d}]")]
    if not isinstance(content, list):
        raise DataError(f"{where}: a KLUE {task.name} file is a JSON list of records")
    return [example(task, record, f"{where} record {i}") for i, record in enumerate(content)]


def hub_record(task: Task, row: dict, label_names: list[str] | None) -> dict:
    """A row of the hub's `klue` dataset (or a `load_from_disk` copy) in the release's shape."""
    if task.name in ("ynat", "nli") and isinstance(row.get("label"), int) and label_names:
        name = label_names[row["label"]] if 0 <= row["label"] < len(label_names) else str(row["label"])
        return {**row, ("label" if task.name == "ynat" else "gold_label"): name}
    if task.name == "mrc" and isinstance(row.get("answers"), dict):
        return {**row, "answers": [{"text": t} for t in row["answers"].get("text", [])]}
    return row


def hub_examples(task: Task, rows, where: str) -> list[Example]:
    """The examples of a `datasets.Dataset` split."""
    label = rows.features.get("label") if hasattr(rows, "features") else None
    names = list(getattr(label, "names", None) or []) or None
    if names is not None and task.labels is not None and set(names) != set(task.labels):
        raise DataError(f"{where}: the dataset's labels {names} do not match the task's {list(task.labels)}")
    return [example(task, hub_record(task, row, names), f"{where} row {i}") for i, row in enumerate(rows)]
