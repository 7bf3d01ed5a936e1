"""`python -m pretrain.evaluate` end to end on a tiny model and small KLUE-format files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from klue_fixtures import tiny_model_dir, write_klue
from pretrain.config import RUN_CONFIG_FILE
from pretrain.evaluate.cli import main
from pretrain.evaluate.report import PREDICTIONS, RESULTS_JSON, RESULTS_TABLE

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "0", "--max-eval-examples", "6", "--max-target-bytes", "4"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(tiny_model_dir(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.fixture(scope="module")
def klue(tmp_path_factory) -> Path:
    return write_klue(tmp_path_factory.mktemp("klue"))


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("evaluate error: "), err
    return err


def test_fine_tuning_learns_the_task_and_writes_json_table_and_metrics(model, klue, tmp_path):
    out = tmp_path / "out"
    # NLI whose hypothesis' word decides the label: a few dozen steps reach far above chance (1/3)
    assert main([model, "--task", "nli", "--data", str(klue), "--output_dir", str(out), "--eval-split", "train",
                 "--epochs", "20", "--batch-size", "8", "--lr", "3e-3", "--log-interval", "20"]) == 0
    result = json.loads((out / RESULTS_JSON).read_text())["results"][model]["nli"]
    assert result["accuracy"] > 80.0, result
    assert result["examples"] == 24 and result["steps"] == 60 and result["frozen_parameters"] == 6
    table = (out / RESULTS_TABLE).read_text()
    assert "| model | nli accuracy |" in table and f"| {model} | {result['accuracy']:.2f} |" in table
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["finetune_nli"] * 3 + ["eval_nli"]
    assert records[-1]["accuracy"] == result["accuracy"] and records[2]["lr"] == pytest.approx(1e-7)


def test_several_models_and_tasks_side_by_side(model, klue, tmp_path, capsys):
    other = str(tiny_model_dir(tmp_path / "other", seed=1))
    out = tmp_path / "out"
    assert main([model, other, "--task", "ynat", "--task", "sts", "--task", "mrc", "--data", str(klue),
                 "--output_dir", str(out), "--unfreeze-gbst", *QUICK]) == 0
    results = json.loads((out / RESULTS_JSON).read_text())["results"]
    assert list(results) == [model, other]
    for per_task in results.values():
        assert set(per_task["ynat"]) >= {"macro_f1", "invalid_predictions"} and per_task["ynat"]["examples"] == 6
        assert {"pearson", "f1"} <= set(per_task["sts"]) and {"exact_match", "rouge_w"} <= set(per_task["mrc"])
        assert per_task["ynat"]["frozen_parameters"] == 0
    header = (out / RESULTS_TABLE).read_text().splitlines()[0]
    assert header == "| model | ynat macro F1 | sts Pearson r | sts F1 | mrc EM | mrc ROUGE-W |"
    assert capsys.readouterr().out.count(other) == 4  # one score row, three count rows
    rows = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
    assert len(rows) == 2 * 3 * 6 and rows[0]["model"] == model and rows[0]["task"] == "ynat"
    assert rows[-2]["guid"] == "klue-mrc-v1_train_00004" and rows[-2]["target"] == ""  # unanswerable


def test_long_inputs_are_cut_and_counted(model, klue, tmp_path):
    out = tmp_path / "out"
    assert main([model, "--task", "mrc", "--data", str(klue), "--output_dir", str(out), "--max-input-bytes", "40",
                 *QUICK]) == 0
    assert json.loads((out / RESULTS_JSON).read_text())["results"][model]["mrc"]["truncated_inputs"] == 6


def test_unknown_task_is_one_line(model, klue, tmp_path, capsys):
    err = _one_line_error(capsys, main([model, "--task", "ner", "--data", str(klue), "--output_dir", str(tmp_path)]))
    assert "invalid choice: 'ner'" in err


def test_missing_split_is_one_line(model, tmp_path, capsys):
    data = write_klue(tmp_path / "klue", tasks=("nli",), splits=("train",))
    err = _one_line_error(capsys, main([model, "--task", "nli", "--data", str(data), "--output_dir", str(tmp_path / "o")]))
    assert "no dev split for nli" in err and "klue-nli-v1.1_dev.json" in err


def test_label_outside_the_task_is_one_line_naming_file_record_and_field(model, tmp_path, capsys):
    data = write_klue(tmp_path / "klue", tasks=("ynat",))
    records = json.loads((data / "klue-ynat-v1.1_dev.json").read_text())
    records[3]["label"] = "연예"
    (data / "klue-ynat-v1.1_dev.json").write_text(json.dumps(records, ensure_ascii=False))
    err = _one_line_error(capsys, main([model, "--task", "ynat", "--data", str(data), "--output_dir", str(tmp_path / "o")]))
    assert "klue-ynat-v1.1_dev.json record 3" in err and "'label' is '연예'" in err


def test_model_typo_and_bad_run_directory_are_one_line(klue, tmp_path, capsys):
    err = _one_line_error(capsys, main([str(tmp_path / "nope"), "--task", "nli", "--data", str(klue),
                                        "--output_dir", str(tmp_path / "o")]))
    assert "no such directory" in err
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / RUN_CONFIG_FILE).write_text("{}")
    err = _one_line_error(capsys, main([str(run), "--task", "nli", "--data", str(klue), "--output_dir", str(tmp_path / "o")]))
    assert "no complete checkpoint" in err


def test_hub_dataset_offline_is_one_line_and_the_module_runs(model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "pretrain.evaluate", model, "--task", "ynat", "--data", "klue",
                           "--output_dir", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("evaluate error: hub dataset klue/ynat could not be loaded")


def test_a_run_directory_is_read_as_export_reads_it(model, klue, tmp_path, monkeypatch):
    import pretrain.export
    from pretrain.checkpoint import MARKER
    from pretrain.modeling import GBSWT5ForConditionalGeneration

    run = tmp_path / "run"
    for step in (2, 4):  # two complete checkpoints: the newest is the one evaluated
        tag = run / "checkpoints" / f"global_step{step}"
        tag.mkdir(parents=True)
        (tag / "mp_rank_00_model_states.pt").write_bytes(b"x" * 10)
        (tag / MARKER).write_text(json.dumps({"step": step, "files": {"mp_rank_00_model_states.pt": 10}}))
    (run / "model_config.json").write_text("{}")
    (run / RUN_CONFIG_FILE).write_text("{}")
    read = []

    def consolidated(run_dir, ckpt_dir, tag):  # DeepSpeed's consolidation is tested with export
        read.append((run_dir, tag))
        return GBSWT5ForConditionalGeneration.from_pretrained(model)

    monkeypatch.setattr(pretrain.export, "consolidated_model", consolidated)
    assert main([str(run), "--task", "ynat", "--data", str(klue), "--output_dir", str(tmp_path / "o"), *QUICK]) == 0
    assert read == [(run.resolve(), "global_step4")]
    assert json.loads((tmp_path / "o" / RESULTS_JSON).read_text())["results"][str(run)]["ynat"]["examples"] == 6
