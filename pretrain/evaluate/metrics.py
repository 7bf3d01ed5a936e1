"""KLUE's metrics on generated text, in percent as KLUE reports them.

YNAT macro F1 over the seven topics, NLI accuracy, STS Pearson r and F1 of "similar" (score >=
3.0), MRC exact match and character ROUGE-W. ROUGE-W is computed as KLUE's baseline computes it:
the F1 of the longest common consecutive character sequence of the normalised answer and gold
(the best over the golds). A generated label outside the task's label set (or an STS output that is
not a number from 0 to 5) counts as wrong and is counted in `invalid_predictions`.
"""
from __future__ import annotations

import re
import string
from difflib import SequenceMatcher

import numpy as np

from pretrain.evaluate.tasks import STS_THRESHOLD, Example, Task

_QUOTES = re.compile(r"[\"'《》<>〈〉()‘’“”「」]")
_PUNCTUATION = set(string.punctuation)


def macro_f1(gold: list[str], predicted: list[str], labels: tuple[str, ...]) -> float:
    """Mean over `labels` of each label's F1 (0 for a label never gold nor predicted correctly)."""
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return 100.0 * float(np.mean(scores))


def accuracy(gold: list, predicted: list) -> float:
    return 100.0 * sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1)


def binary_f1(gold: list[int], predicted: list[int]) -> float:
    """F1 of the positive class."""
    tp = sum(g == 1 and p == 1 for g, p in zip(gold, predicted))
    wrong = sum(g != p for g, p in zip(gold, predicted))
    return 100.0 * 2 * tp / (2 * tp + wrong) if tp else 0.0


def pearson(x: list[float], y: list[float]) -> float:
    """Pearson r; 0 when either side is constant (no linear relation can be seen)."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return 100.0 * float(np.corrcoef(a, b)[0, 1])


def normalize_answer(text: str) -> str:
    """KLUE MRC's normalisation: quotes and brackets, then punctuation, removed; lower case;
    whitespace squeezed."""
    text = "".join(ch for ch in _QUOTES.sub(" ", text.lower()) if ch not in _PUNCTUATION)
    return " ".join(text.split())


def exact_match(predicted: str, golds: list[str]) -> float:
    return float(any(normalize_answer(predicted) == normalize_answer(g) for g in golds))


def rouge_w(predicted: str, golds: list[str]) -> float:
    """Character ROUGE-W (KLUE): the best F1, over the golds, of the longest common consecutive
    character sequence, spaces removed. Both empty (an unanswerable question answered with
    nothing) scores 1."""
    best = 0.0
    pred = normalize_answer(predicted).replace(" ", "")
    for gold in golds:
        ref = normalize_answer(gold).replace(" ", "")
        if not pred or not ref:
            best = max(best, float(pred == ref))
            continue
        common = SequenceMatcher(None, pred, ref, autojunk=False).find_longest_match(0, len(pred), 0, len(ref)).size
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def parse_score(text: str) -> float | None:
    """A generated STS score, or None if it is not a number from 0 to 5."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0.0 <= value <= 5.0 else None


def score(task: Task, examples: list[Example], predictions: list[str]) -> dict[str, float | int]:
    """The task's metrics plus `invalid_predictions` and `examples`."""
    result: dict[str, float | int] = {"examples": len(examples)}
    if task.labels is not None:
        gold = [e.gold for e in examples]
        result["invalid_predictions"] = sum(p not in task.labels for p in predictions)
        if task.name == "ynat":
            result["macro_f1"] = macro_f1(gold, predictions, task.labels)
        else:
            result["accuracy"] = accuracy(gold, predictions)
    elif task.name == "sts":
        values = [parse_score(p) for p in predictions]
        result["invalid_predictions"] = sum(v is None for v in values)
        # An invalid score counts as wrong: the end of the scale farthest from the gold, and the
        # other side of the similarity threshold.
        filled = [v if v is not None else (0.0 if e.gold[0] >= 2.5 else 5.0) for v, e in zip(values, examples)]
        similar = [int(v >= STS_THRESHOLD) if v is not None else 1 - e.gold[1] for v, e in zip(values, examples)]
        result["pearson"] = pearson([e.gold[0] for e in examples], filled)
        result["f1"] = binary_f1([e.gold[1] for e in examples], similar)
    else:
        result["invalid_predictions"] = 0  # any text is an answer
        n = max(len(examples), 1)
        result["exact_match"] = 100.0 * sum(exact_match(p, e.gold) for p, e in zip(predictions, examples)) / n
        result["rouge_w"] = 100.0 * sum(rouge_w(p, e.gold) for p, e in zip(predictions, examples)) / n
    return result
