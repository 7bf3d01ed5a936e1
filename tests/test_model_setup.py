"""Which model a run starts from: random init, ByT5 warm start, or a GBSWT5 checkpoint (local or hub)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from transformers import T5ForConditionalGeneration

from pretrain.config import ModelSettings
from pretrain.demo import make_tiny_byt5
from pretrain.model_setup import build_model, fresh_model
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration

REPO = Path(__file__).resolve().parents[1]


def saved_gbswt5(path: Path) -> GBSWT5ForConditionalGeneration:
    torch.manual_seed(1)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny"))
    model.save_pretrained(path)
    return model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_local_gbswt5_checkpoint_is_continued_not_warm_started(tmp_path):
    saved = saved_gbswt5(tmp_path / "gbswt5")
    model = fresh_model(ModelSettings(init_from=str(tmp_path / "gbswt5")))
    assert isinstance(model, GBSWT5ForConditionalGeneration)
    assert same_weights(model, saved)


def test_local_byt5_checkpoint_is_warm_started_into_gbswt5(tmp_path):
    make_tiny_byt5(tmp_path / "byt5", d_model=32, d_ff=64, d_kv=16, num_layers=2)  # ByT5 layout: own lm_head
    byt5 = T5ForConditionalGeneration.from_pretrained(tmp_path / "byt5")
    model = fresh_model(ModelSettings(init_from=str(tmp_path / "byt5")))
    assert isinstance(model, GBSWT5ForConditionalGeneration)
    assert torch.equal(model.shared.weight, byt5.shared.weight)
    assert torch.equal(model.lm_head.weight, byt5.lm_head.weight)


def test_plain_byt5_from_scratch_has_the_preset_dimensions():
    model = fresh_model(ModelSettings(type="byt5", preset="tiny"))
    assert type(model) is T5ForConditionalGeneration
    assert model.config.d_model == GBSWT5Config.from_preset("tiny").d_model
    # its own randomly drawn output matrix, not a copy of the byte table
    assert model.lm_head.weight is not model.shared.weight
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    assert abs(model.lm_head.weight.std().item() - model.config.initializer_factor) < 0.05


def test_cached_hub_gbswt5_checkpoint_is_recognised_offline(tmp_path):
    """A hub id of a GBSWT5 model (e.g. ETRI's) in the local HF cache loads as GBSWT5, offline."""
    snapshot = tmp_path / "hf" / "hub" / "models--etri-crossmodal--gbst-test" / "snapshots" / ("0" * 40)
    saved_gbswt5(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    torch.save(saved_gbswt5(tmp_path / "again").state_dict(), tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import torch
        from pretrain.config import ModelSettings
        from pretrain.model_setup import build_model, fresh_model
        from pretrain.modeling import GBSWT5ForConditionalGeneration
        model = fresh_model(ModelSettings(init_from="etri-crossmodal/gbst-test"))
        assert isinstance(model, GBSWT5ForConditionalGeneration), type(model)
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        got = model.state_dict()
        assert all(torch.equal(got[k], expected[k]) for k in expected)
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_plain_byt5_keeps_its_own_lm_head_through_save_and_rebuild(tmp_path):
    """transformers 5 ties T5's lm_head to the byte table; a ByT5 run must not, or resuming and
    exporting would load the trained output matrix over the embedding (or the reverse)."""
    from pretrain.model_setup import MODEL_CONFIG_FILE, model_from_config_file, save_model_config

    model = fresh_model(ModelSettings(type="byt5", preset="tiny"))
    assert model.lm_head.weight is not model.shared.weight
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)  # training makes the two matrices differ
    save_model_config(model, tmp_path / MODEL_CONFIG_FILE)
    rebuilt = model_from_config_file(tmp_path / MODEL_CONFIG_FILE)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.lm_head.weight, model.lm_head.weight)
    assert torch.equal(rebuilt.shared.weight, model.shared.weight)


def test_an_init_from_of_another_model_type_is_refused_not_warm_started_in_part(tmp_path):
    """A GBSWT5 checkpoint under another model_type name would load as ByT5 minus its GBST weights."""
    import json

    import pytest

    from pretrain.config import ConfigError

    saved_gbswt5(tmp_path / "renamed")
    config = json.loads((tmp_path / "renamed" / "config.json").read_text())
    (tmp_path / "renamed" / "config.json").write_text(json.dumps({**config, "model_type": "gbst_t5"}))
    with pytest.raises(ConfigError, match=r"run.model.init_from: .*renamed holds a model of type 'gbst_t5'; "
                                          r"a gbswt5 run starts from model_type 'gbswt5' or 't5' or 'mt5' only"):
        fresh_model(ModelSettings(init_from=str(tmp_path / "renamed")))
    # a plain ByT5 run cannot take a GBSWT5 checkpoint either: it would drop the GBST block
    saved_gbswt5(tmp_path / "gbswt5")
    with pytest.raises(ConfigError, match="holds a model of type 'gbswt5'; a byt5 run starts from"):
        fresh_model(ModelSettings(type="byt5", init_from=str(tmp_path / "gbswt5")))


def test_a_random_model_is_initialised_on_the_given_device_a_warm_start_on_the_cpu(tmp_path):
    meta = torch.device("meta")  # stands for a GPU: where the parameters are created tells
    model = build_model(ModelSettings(preset="tiny"), tmp_path / "run", resuming=False, device=meta)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    make_tiny_byt5(tmp_path / "byt5", d_model=32, d_ff=64, d_kv=16, num_layers=2)
    warm = build_model(ModelSettings(init_from=str(tmp_path / "byt5")), tmp_path / "run", resuming=False, device=meta)
    assert {p.device.type for p in warm.parameters()} == {"cpu"}
