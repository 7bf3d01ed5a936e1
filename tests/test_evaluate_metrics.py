"""KLUE metrics of `pretrain.evaluate` against hand-computed cases and independent references."""
import itertools

import numpy as np
import pytest

from pretrain.evaluate.metrics import (accuracy, binary_f1, exact_match, macro_f1, normalize_answer, pearson,
                                       rouge_w, score)
from pretrain.evaluate.tasks import TASKS, Example


def test_macro_f1_by_hand_with_a_label_outside_the_set():
    # a: tp 1, fn 1 -> 2/3; b: tp 1, fp 1 -> 2/3; c: never right -> 0; "x" is wrong, not a class
    assert macro_f1(["a", "a", "b", "c"], ["a", "b", "b", "x"], ("a", "b", "c")) == pytest.approx(100 * 4 / 9)


def test_accuracy_and_binary_f1_by_hand():
    assert accuracy(["e", "n", "c", "c"], ["e", "n", "n", "x"]) == 50.0
    # tp 1, fp 1, fn 1 -> 2 / (2 + 2)
    assert binary_f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(50.0)
    assert binary_f1([0, 0], [0, 0]) == 0.0


def test_pearson_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 5, 40), rng.uniform(0, 5, 40)
    y = 0.5 * x + y
    assert pearson(list(x), list(y)) == pytest.approx(100 * stats.pearsonr(x, y)[0])
    assert pearson([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == 0.0  # constant predictions


def _lccs_f1_slow(pred: str, gold: str) -> float:
    """Longest common substring by trying every substring of pred."""
    best = max((j - i for i, j in itertools.combinations(range(len(pred) + 1), 2) if pred[i:j] in gold), default=0)
    if not best:
        return 0.0
    p, r = best / len(pred), best / len(gold)
    return 2 * p * r / (p + r)


def test_rouge_w_is_the_f1_of_the_longest_common_consecutive_characters():
    # "서울" in "서울특별시": P 2/5, R 1 -> 4/7
    assert rouge_w("서울특별시", ["서울"]) == pytest.approx(4 / 7)
    assert rouge_w("부산", ["서울", "부산 광역시"]) == pytest.approx(2 * 1 * 0.4 / 1.4)  # best gold; spaces removed
    assert rouge_w("", [""]) == 1.0 and rouge_w("답", [""]) == 0.0
    rng = np.random.default_rng(1)
    for _ in range(200):
        pred = "".join(rng.choice(list("가나다라마"), rng.integers(1, 8)))
        gold = "".join(rng.choice(list("가나다라마"), rng.integers(1, 8)))
        assert rouge_w(pred, [gold]) == pytest.approx(_lccs_f1_slow(pred, gold))


def test_exact_match_normalises_quotes_punctuation_case_and_spaces():
    assert normalize_answer(" 《제주도》,  Seoul! ") == "제주도 seoul"
    assert exact_match("'제주도'", ["서울", "제주도"]) == 1.0
    assert exact_match("제주", ["제주도"]) == 0.0


def test_sts_invalid_scores_count_as_wrong_and_are_counted():
    examples = [Example(str(i), "", "", gold) for i, gold in enumerate([(4.0, 1), (1.0, 0), (3.5, 1), (0.5, 0)])]
    result = score(TASKS["sts"], examples, ["4.0", "one", "6.0", "0.5"])
    assert result["invalid_predictions"] == 2  # not a number; outside 0-5
    # invalid -> the far end of the scale: [4.0, 5.0, 0.0, 0.5]; similar: [1, 1, 0, 0]
    assert result["pearson"] == pytest.approx(100 * np.corrcoef([4.0, 1.0, 3.5, 0.5], [4.0, 5.0, 0.0, 0.5])[0, 1])
    assert result["f1"] == pytest.approx(50.0)


def test_label_tasks_count_predictions_outside_the_label_set():
    examples = [Example("0", "", "entailment", "entailment"), Example("1", "", "neutral", "neutral")]
    result = score(TASKS["nli"], examples, ["entailment", "neutra"])
    assert result == {"examples": 2, "invalid_predictions": 1, "accuracy": 50.0}
