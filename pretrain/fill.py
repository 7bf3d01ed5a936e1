"""Span filling: `python -m pretrain.fill MODEL_DIR "text with <mask> markers"`.

Each marker becomes the sentinel pretraining used at that position (258, 257, ...), the model
generates `S0 span0 S1 span1 ... EOS`, and the spans are put back in place of the markers. This is
the quickest way to see what a checkpoint has learned.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch
import transformers

from pretrain.byte_vocab import EOS_ID, MAX_SAFE_SENTINELS, decode, encode, sentinel_id
from pretrain.model_path import ModelPathError, resolve_model


@dataclass
class Filled:
    text: str  # the input with every marker replaced by its predicted span
    spans: list[str]  # predicted span per marker, in order


def build_input_ids(text: str, marker: str = "<mask>") -> tuple[list[int], int]:
    """Byte ids of `text` with each marker replaced by its sentinel, EOS appended; also the marker count."""
    pieces = text.split(marker)
    num_spans = len(pieces) - 1
    if num_spans == 0:
        raise ValueError(f"no {marker!r} marker in the text: nothing to fill")
    if num_spans > MAX_SAFE_SENTINELS:
        raise ValueError(
            f"{num_spans} markers, but only {MAX_SAFE_SENTINELS} sentinels (258..248) cannot collide "
            "with UTF-8 bytes; use fewer markers"
        )
    ids: list[int] = []
    for i, piece in enumerate(pieces):
        ids.extend(encode(piece.encode("utf-8")).tolist())
        if i < num_spans:
            ids.append(sentinel_id(i))
    ids.append(EOS_ID)
    return ids, num_spans


def stop_ids(num_spans: int) -> list[int]:
    """Where generated targets end: EOS after the last span, or the sentinel after it (the model
    has nothing more to fill). That sentinel is also a byte id, so it must not reach the text."""
    return [EOS_ID, sentinel_id(num_spans)]


def split_spans(generated: list[int], num_spans: int) -> list[str]:
    """Cut generated target ids `S0 span0 S1 span1 ... EOS` into one string per sentinel.

    A sentinel the model never produced yields an empty span; ids that are neither bytes nor
    sentinels are dropped by `decode`.
    """
    spans: list[list[int]] = [[] for _ in range(num_spans)]
    sentinel_index = {sentinel_id(i): i for i in range(num_spans)}
    stops = stop_ids(num_spans)
    current = None
    for token in generated:
        if token in stops:
            break
        if token in sentinel_index:
            current = sentinel_index[token]
        elif current is not None:
            spans[current].append(token)
    return [decode(span).decode("utf-8", errors="replace") for span in spans]


def fill(model: torch.nn.Module, text: str, *, marker: str = "<mask>", max_new_tokens: int = 256,
         num_beams: int = 1) -> Filled:
    """Predict every marked span of `text` with a seq2seq byte model."""
    ids, num_spans = build_input_ids(text, marker)
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
            eos_token_id=stop_ids(num_spans),
        )
    spans = split_spans(out[0].tolist(), num_spans)
    pieces = text.split(marker)
    filled = pieces[0] + "".join(span + piece for span, piece in zip(spans, pieces[1:]))
    return Filled(text=filled, spans=spans)


def load_model(model_dir: str) -> torch.nn.Module:
    """A GBSWT5 or plain ByT5 model (directory or hub id), with this project's model code for GBSWT5.

    ETRI's released GBSWT5 directories carry no `auto_map`, so GBSWT5 is loaded through our class
    rather than through remote code. A bad path raises ModelPathError before anything is loaded.
    """
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    import pretrain.modeling  # noqa: F401  (registers gbswt5 with the Auto classes)

    model_dir = resolve_model(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, config=config)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.fill", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="exported GBSWT5 / ByT5 model directory, or a hub id")
    parser.add_argument("text", nargs="+", help="text with markers; several texts are filled one by one")
    parser.add_argument("--marker", default="<mask>", help="the marker string (default: <mask>)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--num-beams", type=int, default=1)
    args = parser.parse_args(argv)

    transformers.utils.logging.disable_progress_bar()  # one bar per weight file is noise here
    try:
        model = load_model(args.model_dir)
    except ModelPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for text in args.text:
        try:
            result = fill(model, text, marker=args.marker, max_new_tokens=args.max_new_tokens,
                          num_beams=args.num_beams)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(result.text)
        for i, span in enumerate(result.spans):
            print(f"  [{i}] sentinel {sentinel_id(i)}: {span!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
