"""Small KLUE v1.1 files in the release's own schema (as in the KLUE-benchmark repository)."""
from __future__ import annotations

import json
from pathlib import Path

TOPICS = ["IT과학", "경제", "사회", "생활문화", "세계", "스포츠", "정치"]
# NLI hypotheses whose last word decides the label: a pattern a tiny model learns in seconds.
NLI_CUES = {"entailment": "맞다", "neutral": "모른다", "contradiction": "아니다"}


def ynat_records(n: int) -> list[dict]:
    return [{"guid": f"ynat-v1_train_{i:05d}", "title": f"{TOPICS[i % 7]} 소식 {i}번째 기사 제목",
             "label": TOPICS[i % 7], "url": f"https://news.example/{i}", "date": "2016.06.30. 오전 10:36"}
            for i in range(n)]


def nli_records(n: int) -> list[dict]:
    labels = list(NLI_CUES)
    records = []
    for i in range(n):
        label = labels[i % 3]
        records.append({"guid": f"klue-nli-v1_train_{i:05d}", "source": "NSMC", "premise": f"영화 {i}",
                        "hypothesis": NLI_CUES[label], "gold_label": label, "author": label,
                        "label2": label, "label3": label, "label4": label, "label5": label})
    return records


def sts_records(n: int) -> list[dict]:
    records = []
    for i in range(n):
        score = round((i % 11) * 0.5, 1)
        records.append({"guid": f"klue-sts-v1_train_{i:05d}", "source": "airbnb-rtt",
                        "sentence1": f"숙소 위치는 찾기 쉬웠어요 {i}", "sentence2": f"숙소 위치가 좋아요 {i}",
                        "labels": {"label": score, "real-label": score, "binary-label": int(score >= 3.0)},
                        "annotations": {"agreement": "0:0:0:0:5:0", "annotators": ["07", "13"],
                                        "annotations": [3, 3]}})
    return records


def mrc_document(n: int) -> dict:
    context = "올여름 장마가 17일 제주도에서 시작됐다. 서울 등 중부지방은 이달 말께 장마가 시작될 전망이다."
    qas = []
    for i in range(n):
        impossible = i % 5 == 4
        answer = [{"text": "제주도", "answer_start": context.index("제주도")}]
        qas.append({"question": f"장마가 시작된 곳은? {i}", "answers": [] if impossible else answer,
                    "plausible_answers": answer if impossible else [], "guid": f"klue-mrc-v1_train_{i:05d}",
                    "question_type": 1, "is_impossible": impossible})
    return {"version": "v1.0", "data": [{"title": "제주도 장마 시작", "source": "hankyung", "news_category": "종합",
                                         "paragraphs": [{"context": context, "qas": qas}]}]}


def write_klue(root: Path, n: int = 24, tasks=("ynat", "nli", "sts", "mrc"), splits=("train", "dev")) -> Path:
    """KLUE release files for `tasks` and `splits` (the same records in each split)."""
    root.mkdir(parents=True, exist_ok=True)
    content = {"ynat": ynat_records(n), "nli": nli_records(n), "sts": sts_records(n), "mrc": mrc_document(n)}
    for task in tasks:
        for split in splits:
            (root / f"klue-{task}-v1.1_{split}.json").write_text(json.dumps(content[task], ensure_ascii=False),
                                                                 encoding="utf-8")
    return root


def tiny_model_dir(path: Path, seed: int = 0) -> Path:
    import torch

    from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration

    torch.manual_seed(seed)
    GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny")).save_pretrained(path)
    return path
