"""The exported tokenizer speaks the pretraining sentinels: `<extra_id_i>` is id 258 - i.

References: the span-filling CLI's own encoding (pretrain.fill.build_input_ids, which follows the
collator), Hugging Face's stock ByT5Tokenizer for text without sentinels, and byte_vocab.decode.
The round trip (text -> ids -> generate -> text) runs the README's and the model card's snippet in
a process that cannot import this project.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import ByT5Tokenizer

from pretrain.byte_vocab import EOS_ID, MAX_SAFE_SENTINELS, VOCAB_SIZE, decode, encode, sentinel_id
from pretrain.fill import build_input_ids, split_spans
from pretrain.model_io import save_pretrained
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration
from pretrain.tokenizer import sentinel_token, sentinel_tokenizer, usage_snippet

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["대한민국은 민주공화국이다.", "모든 국민은 인간으로서의 존엄과 가치를 가지며", "ASCII, 한자 漢字, emoji 😀\n줄바꿈"]


@pytest.fixture(scope="module")
def tokenizer() -> ByT5Tokenizer:
    return sentinel_tokenizer()


def test_extra_ids_are_the_pretraining_sentinels(tokenizer):
    for i in range(MAX_SAFE_SENTINELS):
        assert tokenizer.convert_tokens_to_ids(sentinel_token(i)) == sentinel_id(i) == 258 - i
    masked = "대한민국은 민주<mask>이다. 모든 <mask>은"
    ids = tokenizer(masked.replace("<mask>", "<extra_id_0>", 1).replace("<mask>", "<extra_id_1>")).input_ids
    assert ids == build_input_ids(masked)[0]


def test_text_without_sentinels_encodes_as_stock_byt5(tokenizer):
    stock = ByT5Tokenizer()
    for text in TEXTS:
        assert tokenizer(text).input_ids == stock(text).input_ids == encode(text.encode()).tolist() + [EOS_ID]


def test_extra_ids_past_the_eleventh_are_plain_text(tokenizer):
    # id 247 is byte 0xF4, a UTF-8 lead byte: no sentinel there, the spelling stays text.
    assert tokenizer("<extra_id_11>").input_ids == encode(b"<extra_id_11>").tolist() + [EOS_ID]
    assert tokenizer.convert_tokens_to_ids("<extra_id_11>") is None


def test_decoding_every_id_works_and_drops_sentinels_when_asked(tokenizer):
    assert isinstance(tokenizer.decode(list(range(VOCAB_SIZE))), str)
    generated = [0, 258, *encode("공화국".encode()).tolist(), 257, 300, EOS_ID]
    assert tokenizer.decode(generated, skip_special_tokens=True) == "공화국"
    assert "<extra_id_0>공화국<extra_id_1>" in tokenizer.decode(generated)
    assert split_spans(generated, 1) == ["공화국"]


def test_readme_and_model_card_show_the_same_snippet(tmp_path):
    from pretrain.export import model_card

    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny"))
    card = model_card(tmp_path, "global_step1", model, "gbst-kebyt5-large")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    in_card = usage_snippet("gbst-kebyt5-large", "remote_code")
    in_readme = in_card.replace('"gbst-kebyt5-large"', '"hf/gbst-kebyt5-large"')
    assert in_readme != in_card
    assert f"```python\n{in_card}```" in card and f"```python\n{in_readme}```" in readme


def _run_clean(script: str, tmp_path: Path, project: bool, asks: bool = False) -> subprocess.CompletedProcess:
    """`script` in a fresh offline process with no terminal, this project importable or not; it
    must ask whether to run custom code if `asks`, else must not."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    if project:
        env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, *([] if project else ["-I"]), "-c", script], cwd=tmp_path, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert ("custom code" in output and "[y/N]" in output) == asks, output[-3000:]
    return run


@pytest.mark.parametrize("loader", ["remote_code", "package"])
def test_exported_tokenizer_round_trip_without_a_prompt(tmp_path, loader):
    """The model card's snippet for each layout: the remote-code export in a process that cannot
    import this project, the --no-remote-code one after `import pretrain.modeling`."""
    torch.manual_seed(0)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny")).eval()
    export = tmp_path / "export"
    save_pretrained(model, export, remote_code=loader == "remote_code")
    script = usage_snippet(str(export), loader) + \
        "print(json.dumps(inputs.input_ids[0].tolist()))\nprint(json.dumps(out[0].tolist()))\n"
    run = _run_clean("import json\n" + script, tmp_path, project=loader == "package")
    printed, input_ids, generated = run.stdout.rsplit("\n", 3)[:3]
    assert json.loads(input_ids) == build_input_ids("대한민국은 민주<mask>이다.")[0]
    ids = torch.tensor([json.loads(input_ids)])
    with torch.no_grad():
        expected = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                  eos_token_id=[1, 257])[0].tolist()
    assert json.loads(generated) == expected
    text_ids = [t for t in expected if t not in (0, EOS_ID) and not 248 <= t <= 258]
    assert printed == decode(text_ids).decode("utf-8", errors="ignore")


def test_no_remote_code_export_is_etri_layout_and_its_tokenizer_loads_without_trust(tmp_path):
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny")).eval()
    export = tmp_path / "export"
    save_pretrained(model, export, remote_code=False)
    config = json.loads((export / "config.json").read_text())
    assert "auto_map" not in config and config["model_type"] == "gbswt5"
    assert not list(export.glob("*.py"))
    # No trust_remote_code, no package registering gbswt5: the tokenizer alone, without a question.
    script = ("import json, sys\nfrom transformers import AutoTokenizer\n"
              "tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])\n"
              "print(json.dumps(tokenizer('민주<extra_id_0>이다').input_ids))\n")
    run = _run_clean(script.replace("sys.argv[1]", repr(str(export))), tmp_path, project=False)
    assert json.loads(run.stdout.splitlines()[-1]) == build_input_ids("민주<mask>이다")[0]
    # Why the layout exists: transformers reads config.json first, and the remote-code export's
    # auto_map makes it ask, for a tokenizer that needs no code (README, Export).
    save_pretrained(model, tmp_path / "remote")
    _run_clean(script.replace("sys.argv[1]", repr(str(tmp_path / "remote"))), tmp_path, project=False, asks=True)
