"""KLUE data for `pretrain.evaluate`: release files, datasets directories, examples; the GBST freeze."""
import pytest

from klue_fixtures import write_klue
from pretrain.evaluate.sources import load_split
from pretrain.evaluate.tasks import NLI_LABELS, TASKS, DataError

# ETRI's model card lists these as the GBST layers to freeze for fine-tuning (its byte table,
# encoder.embed_tokens.embeds.weight, is the shared embedding and it advises keeping it trainable).
CARD_GBST_FROZEN = {
    "encoder.embed_tokens.positional_convol.2.convol.weight", "encoder.embed_tokens.positional_convol.2.convol.bias",
    "encoder.embed_tokens.positional_convol.2.proj.weight", "encoder.embed_tokens.positional_convol.2.proj.bias",
    "encoder.embed_tokens.cand_scoring.0.weight", "encoder.embed_tokens.cand_scoring.0.bias",
}


def test_release_files_become_text_to_text_examples(tmp_path):
    root = write_klue(tmp_path, n=10)
    nli = load_split(str(root), TASKS["nli"], "dev")
    assert nli[0].source == "nli premise: 영화 0 hypothesis: 맞다" and nli[0].target == nli[0].gold == "entailment"
    sts = load_split(str(root), TASKS["sts"], "train")
    assert sts[7].target == "3.5" and sts[7].gold == (3.5, 1)
    mrc = load_split(str(root), TASKS["mrc"], "validation")  # the hub's name for dev
    assert len(mrc) == 10 and mrc[0].target == "제주도" and mrc[0].source.startswith("mrc question: 장마가")
    assert mrc[4].gold == [""] and mrc[4].target == ""  # is_impossible


def test_release_files_in_the_klue_repository_layout(tmp_path):
    write_klue(tmp_path / "klue-ynat-v1.1", n=3, tasks=("ynat",))
    assert [e.target for e in load_split(str(tmp_path), TASKS["ynat"], "train")] == ["IT과학", "경제", "사회"]


def test_datasets_directory_with_class_labels(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"guid": datasets.Value("string"), "premise": datasets.Value("string"),
                                  "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(NLI_LABELS))})
    rows = {"guid": ["a", "b"], "premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": [2, 0]}
    split = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": split, "validation": split}).save_to_disk(str(tmp_path / "nli"))
    dev = load_split(str(tmp_path), TASKS["nli"], "dev")
    assert [e.target for e in dev] == ["contradiction", "entailment"]
    with pytest.raises(DataError, match=r"no split 'test' for nli \(it has \['train', 'validation'\]\)"):
        load_split(str(tmp_path), TASKS["nli"], "test")
    other = datasets.Features({**features, "label": datasets.ClassLabel(names=["yes", "no"])})
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({**rows, "label": [0, 1]}, features=other)}).save_to_disk(
        str(tmp_path / "bad" / "nli"))
    with pytest.raises(DataError, match=r"labels \['yes', 'no'\] do not match"):
        load_split(str(tmp_path / "bad"), TASKS["nli"], "train")


@pytest.mark.parametrize("edit, message", [
    (lambda r: r[1].pop("hypothesis"), "record 1: missing field 'hypothesis'"),
    (lambda r: r[2].update(gold_label="yes"), "record 2: field 'gold_label' is 'yes', not one of"),
    (lambda r: r[0].update(premise=5), "record 0: field 'premise' is int, expected str"),
])
def test_bad_records_name_file_record_and_field(tmp_path, edit, message):
    import json

    root = write_klue(tmp_path, n=4, tasks=("nli",))
    records = json.loads((root / "klue-nli-v1.1_train.json").read_text())
    edit(records)
    (root / "klue-nli-v1.1_train.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match="klue-nli-v1.1_train.json " + message.replace("(", r"\(")):
        load_split(str(root), TASKS["nli"], "train")


def test_bad_json_and_missing_data_are_named(tmp_path):
    root = write_klue(tmp_path, n=2, tasks=("sts",))
    (root / "klue-sts-v1.1_dev.json").write_text("[{")
    with pytest.raises(DataError, match="klue-sts-v1.1_dev.json: not valid JSON"):
        load_split(str(root), TASKS["sts"], "dev")
    with pytest.raises(DataError, match="no KLUE mrc data"):
        load_split(str(root), TASKS["mrc"], "dev")
    with pytest.raises(DataError, match="no such directory"):
        load_split(str(tmp_path / "nope"), TASKS["mrc"], "dev")


def test_freeze_gbst_freezes_exactly_the_cards_gbst_parameters():
    from pretrain.model_setup import freeze_gbst
    from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration

    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny"))
    assert set(freeze_gbst(model)) == CARD_GBST_FROZEN
    frozen = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    assert frozen == CARD_GBST_FROZEN
    assert model.encoder.embed_tokens.embeds.weight.requires_grad and model.shared.weight.requires_grad


def test_hub_rows_of_ynat_and_mrc(tmp_path):
    datasets = pytest.importorskip("datasets")
    from pretrain.evaluate.tasks import YNAT_LABELS

    ynat = datasets.Dataset.from_dict(
        {"guid": ["y0"], "title": ["삼성 신제품"], "label": [0], "url": ["u"], "date": ["d"]},
        features=datasets.Features({"guid": datasets.Value("string"), "title": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=list(YNAT_LABELS)),
                                    "url": datasets.Value("string"), "date": datasets.Value("string")}))
    mrc = datasets.Dataset.from_dict({
        "title": ["t", "t"], "context": ["서울은 수도다.", "서울은 수도다."], "news_category": ["x", "x"],
        "source": ["s", "s"], "guid": ["m0", "m1"], "is_impossible": [False, True], "question_type": [1, 1],
        "question": ["수도는?", "인구는?"],
        "answers": [{"answer_start": [0, 0], "text": ["서울", "서울은"]}, {"answer_start": [], "text": []}]})
    datasets.DatasetDict({"validation": ynat}).save_to_disk(str(tmp_path / "ynat"))
    datasets.DatasetDict({"validation": mrc}).save_to_disk(str(tmp_path / "mrc"))
    assert load_split(str(tmp_path), TASKS["ynat"], "dev")[0].target == "IT과학"
    first, impossible = load_split(str(tmp_path), TASKS["mrc"], "dev")
    assert first.gold == ["서울", "서울은"] and first.target == "서울" and first.source == "mrc question: 수도는? context: 서울은 수도다."
    assert impossible.gold == [""]
