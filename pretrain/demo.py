"""Short GBSWT5 model demo: warm start from a tiny locally created ByT5, forward, save, reload.

Runs offline in seconds on a CPU: `python -m pretrain.demo [--out DIR]`.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

from pretrain import byte_vocab
from pretrain.model_io import from_byt5, save_pretrained

TEXT = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다."


def make_tiny_byt5(path: Path, **config_overrides) -> None:
    """A randomly initialised ByT5-layout T5 (vocab 384, gated-gelu, encoder 3x decoder depth, its own lm_head)."""
    torch.manual_seed(0)
    settings = dict(vocab_size=384, d_model=64, d_ff=128, d_kv=32, num_layers=3, num_decoder_layers=1, num_heads=2,
                    feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(T5Config(**{**settings, **config_overrides}))
    # transformers 5 ties lm_head to the byte table at construction; ByT5's is its own matrix.
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    model.save_pretrained(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="keep the models here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        make_tiny_byt5(out / "byt5-tiny")
        model = from_byt5(out / "byt5-tiny").eval()

        data = TEXT.encode("utf-8")
        ids = torch.from_numpy(byte_vocab.encode(data)).unsqueeze(0)
        inputs = torch.cat([ids, torch.tensor([[byte_vocab.EOS_ID]])], dim=1)
        labels = inputs[:, :32]
        with torch.no_grad():
            out_before = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels)
            encoded = model.get_encoder()(input_ids=inputs)
        print(f"{len(data)} bytes -> {inputs.shape[1]} ids -> GBST/encoder length {encoded.last_hidden_state.shape[1]}; "
              f"loss {out_before.loss.item():.3f}")

        save_pretrained(model, out / "gbswt5-tiny")
        reloaded = AutoModelForSeq2SeqLM.from_pretrained(out / "gbswt5-tiny", trust_remote_code=True).eval()
        with torch.no_grad():
            out_after = reloaded(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels)
        same = torch.equal(out_before.logits, out_after.logits)
        print(f"saved to {out / 'gbswt5-tiny'} and reloaded: logits identical = {same}")
        if not same:
            raise SystemExit("reloaded model disagrees with the saved one")


if __name__ == "__main__":
    main()
