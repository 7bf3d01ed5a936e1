"""Tiny-model training runs under the real `deepspeed` launcher on CPU (gloo), 1 and 2 ranks.

Launches are few and each checks several things; the first DeepSpeed run on a machine
JIT-builds a communication op (about 3 minutes, cached in ~/.cache/torch_extensions/gbst-kebyt5-*).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepspeed_runs import (constitution_text, kolaw_shards, launch, packed_chunks, run_args, tags,  # noqa: F401 (a fixture)
                            train_losses)
from pretrain.metrics import read_metrics

pytestmark = pytest.mark.deepspeed

# ---------------------------------------------------------------------------------------------
# One rank, ZeRO-2, GBSWT5: learning, logging, eval, checkpoints, exact resume, export


@pytest.fixture(scope="module")
def one_rank_run(kolaw_shards, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one_rank") / "run"
    args = run_args(kolaw_shards, out, "eval.interval=15", "checkpoint.interval=10", "checkpoint.keep_last=2",
                    "logging.wandb=true", "schedule.type=cosine", steps=30)
    wandb_env = {"WANDB_MODE": "offline"}
    code = launch(args, out.parent / "log.txt", env=wandb_env)
    assert code == 0, (out.parent / "log.txt").read_text()[-4000:]
    return out


def test_one_rank_learns_korean_text_and_logs_everything(one_rank_run):
    records = read_metrics(one_rank_run / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == list(range(1, 31))
    first, last = train[:5], train[-5:]
    assert sum(r["loss"] for r in last) / 5 < 0.8 * sum(r["loss"] for r in first) / 5
    for key in ("lr", "grad_norm", "examples_per_s", "input_bytes_per_s", "tokens_per_s", "model_tflops", "peak_rss_gb"):
        assert all(isinstance(r[key], float) and r[key] > 0 for r in train), key
    assert [e["step"] for e in evals] == [15, 30]
    assert evals[1]["loss"] < evals[0]["loss"] and 0 < evals[1]["byte_accuracy"] <= 1
    assert evals[0]["target_ids"] == evals[1]["target_ids"] > 0  # the same validation batches
    # cosine after 2 warmup steps down to final_lr_ratio 0.1 (tiny.json) at step 30; step s runs
    # with the rate of scheduler index s - 1
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (30 - 1 - 2) / (30 - 2)))
    assert train[-1]["lr"] == pytest.approx(3e-3 * cosine)
    assert tags(one_rank_run) == ["global_step20", "global_step30"]  # keep_last 2
    assert (one_rank_run / "loss_curve.png").stat().st_size > 1000
    assert json.loads((one_rank_run / "run_config.json").read_text())["run"]["max_steps"] == 30
    assert list((one_rank_run / "wandb").glob("offline-run-*")), "wandb did not log offline"
    log = (one_rank_run.parent / "log.txt").read_text()
    assert "step 1/30 train: loss " in log and "step 30/30 train: " in log and "step 30/30 eval: " in log
    assert all(" eta " in line for line in log.splitlines() if "/30 train: " in line)
    assert "data mixture (proportional to rows): " in log and f"from {len(packed_chunks(constitution_text())) - 16} rows (" in log
    assert "MFU is not logged: the bf16 peak of CPU is not known; set it with --set logging.peak_tflops=" in log


def test_rerun_of_a_finished_run_does_nothing(one_rank_run, kolaw_shards, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in one_rank_run.rglob("*") if p.is_file()}
    args = run_args(kolaw_shards, one_rank_run, "eval.interval=15", "checkpoint.interval=10", "checkpoint.keep_last=2",
                    "schedule.type=cosine", steps=30)
    assert launch(args, tmp_path / "log.txt") == 0
    text = (tmp_path / "log.txt").read_text()
    assert "already at max_steps (30; newest checkpoint: step 30), nothing to do" in text
    assert "parameters (" not in text  # nothing was built
    assert {p: p.stat().st_mtime_ns for p in one_rank_run.rglob("*") if p.is_file()} == before


def test_one_rank_resume_is_exact(one_rank_run, kolaw_shards, tmp_path):
    # Stopped with stop_at_step, the cosine schedule still spans all 30 steps, so the split run
    # follows the uninterrupted one exactly.
    out = tmp_path / "split"
    for steps in (5, 10):
        args = run_args(kolaw_shards, out, "eval.interval=15", "checkpoint.interval=10", "checkpoint.keep_last=2",
                        "schedule.type=cosine", f"stop_at_step={steps}", steps=30)
        assert launch(args, tmp_path / f"log{steps}.txt") == 0, (tmp_path / f"log{steps}.txt").read_text()[-3000:]
        if steps == 5:
            (out / "model_config.json").unlink()  # a resumed run without it (deleted, or older) writes it again
    assert "resumed from step 5" in (tmp_path / "log10.txt").read_text()
    assert tags(out) == ["global_step10", "global_step5"]
    assert json.loads((out / "model_config.json").read_text())["model_type"] == "gbswt5"
    reference = train_losses(one_rank_run)
    assert train_losses(out) == {s: reference[s] for s in range(1, 11)}

    # a changed trajectory setting is refused, and the original run config is kept
    args = run_args(kolaw_shards, out, "schedule.type=cosine", "optimizer.lr=0.1", steps=30)
    assert launch(args, tmp_path / "changed.txt") == 2
    assert "cannot resume: " in (tmp_path / "changed.txt").read_text()
    assert "the checkpoint was written with config hash" in (tmp_path / "changed.txt").read_text()
    assert "changed: run.optimizer.lr: 0.003 -> 0.1; only output_dir" in (tmp_path / "changed.txt").read_text()
    assert json.loads((out / "run_config.json").read_text())["run"]["optimizer"]["lr"] == 3e-3


def test_config_errors_stop_the_launch_before_any_work(kolaw_shards, tmp_path):
    args = run_args(kolaw_shards, tmp_path / "run", "data.input_length=64", steps=3)
    assert launch(args, tmp_path / "log.txt") != 0
    text = (tmp_path / "log.txt").read_text()
    assert "configuration error: run.data.input_length: " in text and "128-byte chunks" in text
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Two ranks, ZeRO-3: stop + resume, pre-emption, damaged checkpoint fallback, GBST freezing


ZERO3 = ("zero_optimization.stage=3", "gradient_accumulation_steps=2", "optimizer.type=adamw_scaled",
         "optimizer.lr=0.02", "model.freeze_gbst=true", "model.gradient_checkpointing=true",
         "eval.interval=4", "checkpoint.interval=2", "checkpoint.keep_last=3")


@pytest.fixture(scope="module")
def byt5_checkpoint(tmp_path_factory) -> Path:
    """A local ByT5-shaped checkpoint (narrower than the tiny preset) to warm start from."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=384, d_model=48, d_ff=96, num_layers=2, num_decoder_layers=1, num_heads=2,
                      d_kv=24, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("byt5") / "byt5-mini"
    T5ForConditionalGeneration(config).save_pretrained(path)
    return path


def zero3_args(shards: Path, out: Path, byt5: Path, steps: int) -> list[str]:
    return [*run_args(shards, out, *ZERO3, steps=steps), "--init_from", str(byt5)]


@pytest.fixture(scope="module")
def zero3_reference(kolaw_shards, byt5_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zero3_ref") / "run"
    code = launch(zero3_args(kolaw_shards, out, byt5_checkpoint, 8), out.parent / "log.txt", ranks=2)
    assert code == 0, (out.parent / "log.txt").read_text()[-4000:]
    return out


def test_two_rank_zero3_stop_preempt_damage_resume_is_exact(zero3_reference, kolaw_shards, byt5_checkpoint,
                                                           tmp_path):
    out = tmp_path / "run"
    assert launch(zero3_args(kolaw_shards, out, byt5_checkpoint, 4), tmp_path / "a.txt", ranks=2) == 0
    assert tags(out)[-1] == "global_step4"

    launch(zero3_args(kolaw_shards, out, byt5_checkpoint, 8), tmp_path / "b.txt", ranks=2,
           faults={"FAULT_SIGTERM_AT": "6"})
    log_b = (tmp_path / "b.txt").read_text()
    assert "received SIGTERM" in log_b and "stopped at step 6 on request" in log_b
    assert max(train_losses(out)) == 6 and "global_step6" in tags(out)
    assert (out / "checkpoints" / "global_step6" / "complete.json").exists()

    # damage the newest checkpoint: the next run warns and falls back to step 4
    victim = max((out / "checkpoints" / "global_step6").glob("*optim_states.pt"))
    victim.write_bytes(victim.read_bytes()[:100])
    assert launch(zero3_args(kolaw_shards, out, byt5_checkpoint, 8), tmp_path / "c.txt", ranks=2) == 0
    log_c = (tmp_path / "c.txt").read_text()
    assert "checkpoint global_step6 is damaged" in log_c and "resumed from step 4" in log_c

    assert train_losses(out) == train_losses(zero3_reference)
    assert sorted(train_losses(out)) == list(range(1, 9))


def test_zero3_warm_start_export_and_gbst_freezing(zero3_reference, byt5_checkpoint, tmp_path):
    # warm started: the architecture is the ByT5 checkpoint's, not the tiny preset's
    assert json.loads((zero3_reference / "model_config.json").read_text())["d_model"] == 48
    from pretrain.export import export, main as export_main
    from pretrain.modeling import GBSWT5ForConditionalGeneration

    # ETRI's layout, through the CLI: no code, no auto_map, a card whose snippet imports the package
    assert export_main([str(zero3_reference), str(tmp_path / "s4"), "--tag", "global_step4", "--no-remote-code"]) == 0
    assert "auto_map" not in json.loads((tmp_path / "s4" / "config.json").read_text())
    assert not list((tmp_path / "s4").glob("*.py"))
    assert "import pretrain.modeling" in (tmp_path / "s4" / "README.md").read_text(encoding="utf-8")
    early = GBSWT5ForConditionalGeneration.from_pretrained(tmp_path / "s4")
    final = GBSWT5ForConditionalGeneration.from_pretrained(export(zero3_reference, tmp_path / "s8"))
    for name, param in final.named_parameters():
        before = dict(early.named_parameters())[name]
        if name.startswith("encoder.embed_tokens.") and name != "encoder.embed_tokens.embeds.weight":
            assert torch.equal(param, before), f"frozen GBST parameter {name} changed"
        else:
            assert not torch.equal(param, before), f"{name} did not train"


# ---------------------------------------------------------------------------------------------
# Two ranks, ZeRO-2, plain ByT5: the non-finite loss guard


def test_two_rank_nonfinite_guard_skips_then_stops_with_checkpoint(kolaw_shards, tmp_path):
    out = tmp_path / "run"
    args = run_args(kolaw_shards, out, "model.type=byt5", "max_nonfinite_in_row=3", "checkpoint.interval=100",
                    "eval.interval=100", steps=10)
    code = launch(args, tmp_path / "log.txt", ranks=2,
                  faults={"FAULT_NONFINITE_ONCE": "2", "FAULT_NONFINITE_ALWAYS": "5"})
    text = (tmp_path / "log.txt").read_text()
    assert code == 3, text[-3000:]
    assert "non-finite loss at step 2 (1 in a row): batch skipped" in text
    assert "3 non-finite losses in a row at step 5" in text
    assert sorted(train_losses(out)) == [1, 2, 3, 4]
    assert tags(out) == ["global_step4"] and (out / "checkpoints" / "global_step4" / "complete.json").exists()
    assert json.loads((out / "model_config.json").read_text())["model_type"] == "t5"


# ---------------------------------------------------------------------------------------------
# Export round trip: the HF directory loads without this project and gives the same logits

HIDE_PROJECT = """
import sys
# the editable install puts a finder for this project on sys.meta_path; drop it
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
import importlib.util
assert importlib.util.find_spec("pretrain") is None, "the project is still importable"
"""

LOAD_AND_RUN = HIDE_PROJECT + """
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
out, inputs_path, result_path = sys.argv[1:]
model = AutoModelForSeq2SeqLM.from_pretrained(out, trust_remote_code=True, attn_implementation="eager").eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
tokenizer = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
batch = torch.load(inputs_path, weights_only=True)
with torch.no_grad():
    logits = model(**batch).logits
torch.save({"logits": logits, "ids": tokenizer("헌법").input_ids}, result_path)
"""


def test_export_round_trip_in_a_process_without_the_project(one_rank_run, kolaw_shards, tmp_path):
    from pretrain.collator import SpanCorruptionCollator
    from pretrain.config import parse_document, validate
    from pretrain.data import validation_batches
    from pretrain.export import consolidated_model, export, locate

    out = export(one_rank_run, tmp_path / "hf", write_bin=True)
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json", "README.md",
            "pytorch_model.bin"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    final_eval = [r for r in read_metrics(one_rank_run / "metrics.jsonl") if r["kind"] == "eval"][-1]
    assert "checkpoint global_step30" in card and f"{final_eval['loss']:.4f}" in card

    model = consolidated_model(*locate(one_rank_run, None))
    model.set_attn_implementation("eager")  # the same attention kernel on both sides
    config = parse_document(json.loads((one_rank_run / "run_config.json").read_text()))
    shards = validate(config, world_size=1)
    collator = SpanCorruptionCollator(seed=config.run.seed, pad_inputs_to=shards.inputs_length,
                                      pad_targets_to=shards.targets_length)
    batches = validation_batches([kolaw_shards], batch_size=4, collator=collator, max_batches=2)
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    inputs = {k: batches[0][k] for k in keys}
    torch.save(inputs, tmp_path / "inputs.pt")
    subprocess.run([sys.executable, "-I", "-c", LOAD_AND_RUN, str(out), str(tmp_path / "inputs.pt"),
                    str(tmp_path / "result.pt")], cwd=tmp_path, check=True, timeout=300)
    result = torch.load(tmp_path / "result.pt", weights_only=True)
    with torch.no_grad():
        expected = model(**inputs).logits
    # Identical weights and code; float32 matmuls over differently laid out (mmap-loaded vs copied)
    # tensors round differently in the last bits, so logits of magnitude ~10 agree to ~1e-4.
    torch.testing.assert_close(result["logits"], expected, rtol=1e-4, atol=3e-4)
    assert result["ids"] == [b + 3 for b in "헌법".encode()] + [1]  # ByT5 byte tokenizer with EOS

    # the exported weights are the trained ones: the final eval loss of the (bf16) run is reproduced
    with torch.no_grad():
        total = count = 0.0
        for batch in batches:
            logits = model(**{k: batch[k] for k in keys}).logits
            kept = batch["labels"] != -100
            total += torch.nn.functional.cross_entropy(logits[kept], batch["labels"][kept], reduction="sum").item()
            count += kept.sum().item()
    assert total / count == pytest.approx(final_eval["loss"], rel=0.03)

    legacy = torch.load(out / "pytorch_model.bin", weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(legacy[name], tensor), name
