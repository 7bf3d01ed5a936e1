"""Warm start from ByT5 and the Hugging Face format (save, reload without this project)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration

from pretrain.demo import make_tiny_byt5
from pretrain.model_io import from_byt5, load_t5, save_pretrained

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_byt5_dir(tmp_path_factory) -> Path:
    """A ByT5-layout T5 (separate lm_head, gated-gelu, vocab 384, dropout 0.1) saved with transformers."""
    path = tmp_path_factory.mktemp("byt5")
    make_tiny_byt5(path, d_model=32, d_ff=64, d_kv=16, dropout_rate=0.1)
    return path


def saved_tensors(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for f in sorted(path.glob("*.safetensors")) for k, v in load_file(f).items()}


def test_from_byt5_copies_every_t5_tensor_bitwise(tiny_byt5_dir: Path) -> None:
    source = saved_tensors(tiny_byt5_dir)
    assert "lm_head.weight" in source and not torch.equal(source["lm_head.weight"], source["shared.weight"])
    model = from_byt5(tiny_byt5_dir, z_loss=0.0)
    ours = model.state_dict()
    for key, tensor in source.items():
        target = "encoder.embed_tokens.embeds.weight" if key == "encoder.embed_tokens.weight" else key
        assert torch.equal(ours[target], tensor), key
    for alias in ("encoder.embed_tokens.embeds.weight", "decoder.embed_tokens.weight"):
        assert torch.equal(ours[alias], source["shared.weight"])
    cfg = model.config
    assert (cfg.d_model, cfg.num_layers, cfg.num_decoder_layers, cfg.d_ff) == (32, 3, 1, 64)
    assert cfg.block_sizes == (1, 2, 3, 6, 9) and cfg.downsample_factor == 3
    assert cfg.dropout_rate == 0.0 and cfg.z_loss == 0.0 and not cfg.tie_word_embeddings


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_warm_start_keeps_lm_head_apart_without_the_tie_warning(tiny_byt5_dir: Path) -> None:
    """transformers 5 warns on every ByT5 load that it "will NOT tie" lm_head (T5Config always says
    tied); that is the intended result, so the warning is dropped, and only that one."""
    logger = logging.getLogger("transformers.modeling_utils")
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        T5ForConditionalGeneration.from_pretrained(tiny_byt5_dir)
        assert any("will NOT tie" in m for m in recorder.messages)  # what a plain load says
        recorder.messages.clear()
        model = from_byt5(tiny_byt5_dir)
        plain = load_t5(tiny_byt5_dir)
        assert not any("NOT tie" in m for m in recorder.messages)
        logger.warning("another warning")
        assert recorder.messages[-1] == "another warning"  # the filter is gone after the load
    finally:
        logger.removeHandler(recorder)
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    assert plain.lm_head.weight is not plain.shared.weight


def test_from_byt5_initialises_gbst_explicitly(tiny_byt5_dir: Path) -> None:
    gbst = from_byt5(tiny_byt5_dir).encoder.embed_tokens
    conv = gbst.positional_convol["2"]
    expected_tap = torch.zeros_like(conv.convol.weight)
    expected_tap[:, 0, 0] = 1
    assert torch.equal(conv.convol.weight, expected_tap)
    assert torch.equal(conv.proj.weight[:, :, 0], torch.eye(32))
    for bias in (conv.convol.bias, conv.proj.bias, gbst.cand_scoring[0].bias):
        assert torch.equal(bias, torch.zeros_like(bias))
    scorer = gbst.cand_scoring[0].weight
    assert torch.isfinite(scorer).all() and 0.05 < scorer.std().item() * 32**0.5 < 3


def test_from_byt5_hub_name_offline_fails_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    with pytest.raises(OSError, match=r"(?s)google/byt5-small.*offline.*directory path"):
        from_byt5("google/byt5-small")


def test_warm_started_model_trains_one_step(tiny_byt5_dir: Path) -> None:
    model = from_byt5(tiny_byt5_dir).train()
    ids = torch.randint(3, 259, (2, 40))
    labels = torch.randint(3, 259, (2, 8))
    loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.encoder.embed_tokens.positional_convol["2"].proj.weight.grad.abs().sum() > 0


CLEAN_LOAD = textwrap.dedent(
    """
    import importlib.util, os, sys
    # This project must not be importable: drop its editable-install finder and the repo root.
    repo = os.path.realpath(sys.argv[2])
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")
                        and "__editable__" not in type(f).__module__]
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != repo]
    assert importlib.util.find_spec("pretrain") is None, "pretrain is importable"
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    path = sys.argv[1]
    model = AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(["한국어 바이트 모델", "GBST-KEByT5 pretraining"], return_tensors="pt", padding=True)
    labels = tokenizer(["모델", "T5"], return_tensors="pt", padding=True).input_ids
    with torch.no_grad():
        logits = model(**batch, labels=labels).logits
    torch.save({"logits": logits, "input_ids": batch.input_ids, "labels": labels,
                "attention_mask": batch.attention_mask, "module": type(model).__module__}, sys.argv[3])
    """
)


def test_save_pretrained_loads_offline_without_this_project(tmp_path, tiny_byt5_dir: Path) -> None:
    model = from_byt5(tiny_byt5_dir).eval()
    with torch.no_grad():
        model.encoder.embed_tokens.cand_scoring[0].bias.fill_(0.25)  # loaded values, not re-initialised ones
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    (out_dir / "stale.txt").write_text("replaced atomically")
    save_pretrained(model, out_dir)
    files = {p.name for p in out_dir.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "configuration_gbswt5.py",
            "modeling_gbswt5.py", "tokenizer_config.json"} <= files
    assert "stale.txt" not in files and not list(tmp_path.glob(".export*"))
    umask = os.umask(0)
    os.umask(umask)
    assert out_dir.stat().st_mode & 0o777 == 0o777 & ~umask  # not the private mode of a temporary directory
    config = json.loads((out_dir / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_gbswt5.GBSWT5Config",
                                  "AutoModelForSeq2SeqLM": "modeling_gbswt5.GBSWT5ForConditionalGeneration"}
    assert config["model_type"] == "gbswt5" and config["tie_word_embeddings"] is False
    assert json.loads((out_dir / "generation_config.json").read_text())["decoder_start_token_id"] == 0

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), TRANSFORMERS_VERBOSITY="error")
    result_file = tmp_path / "result.pt"
    run = subprocess.run(
        [sys.executable, "-I", "-c", CLEAN_LOAD, str(out_dir), str(REPO), str(result_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = torch.load(result_file, weights_only=True)
    assert result["module"].startswith("transformers_modules.")
    # Tokenizer files give ByT5 ids: byte + 3, EOS 1, pad 0.
    assert result["input_ids"][1, 0].item() == ord("G") + 3 and 1 in result["input_ids"][1].tolist()
    with torch.no_grad():
        expected = model(input_ids=result["input_ids"], attention_mask=result["attention_mask"],
                         labels=result["labels"]).logits
    torch.testing.assert_close(result["logits"], expected, rtol=0, atol=0)


def test_demo_warm_starts_saves_and_reloads(tmp_path, capsys) -> None:
    from pretrain import demo

    demo.main(["--out", str(tmp_path)])
    assert "logits identical = True" in capsys.readouterr().out
    assert (tmp_path / "gbswt5-tiny" / "model.safetensors").is_file()
