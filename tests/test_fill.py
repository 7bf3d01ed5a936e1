"""Span-filling CLI: marker -> sentinel mapping and the parsing of generated spans."""
import pytest

from pretrain.byte_vocab import EOS_ID
from pretrain.fill import build_input_ids, split_spans


def ids_of(text: str) -> list[int]:
    return [b + 3 for b in text.encode("utf-8")]


def test_markers_become_descending_sentinels():
    ids, n = build_input_ids("대한<mask>국 헌<mask>")
    assert n == 2
    assert ids == ids_of("대한") + [258] + ids_of("국 헌") + [257] + [EOS_ID]


def test_text_without_marker_is_refused():
    with pytest.raises(ValueError, match="no '<mask>' marker"):
        build_input_ids("헌법 전문")


def test_more_markers_than_safe_sentinels_is_refused():
    with pytest.raises(ValueError, match="11 sentinels"):
        build_input_ids("<mask>" * 12)


def test_generated_targets_split_per_sentinel():
    # pad, unk and ids past the byte range inside a span are not text
    generated = [0, 258] + ids_of("민") + [0, 2, 300] + ids_of("국") + [257] + ids_of("법") + [EOS_ID] + ids_of("ignored")
    assert split_spans(generated, 2) == ["민국", "법"]


def test_generation_stopped_by_the_next_sentinel_keeps_it_out_of_the_text():
    # sentinel_id(1) == 257 is also the id of byte 0xFE: it ends a one-span fill, not its text
    assert split_spans([0, 258] + ids_of("법") + [257], 1) == ["법"]


def test_missing_sentinel_gives_empty_span_and_bytes_before_first_sentinel_are_ignored():
    generated = [0] + ids_of("x") + [257] + ids_of("법") + [EOS_ID]
    assert split_spans(generated, 2) == ["", "법"]


def test_cli_fills_spans_from_a_saved_model(tmp_path, capsys):
    import torch

    from pretrain.fill import main
    from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration

    torch.manual_seed(0)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny")).eval()
    model.save_pretrained(tmp_path / "model")
    # The same greedy generation done by hand on hand-built ids: prefix, sentinel 258, suffix, EOS;
    # generation stops at EOS or at the sentinel after the last marker's (257).
    ids = torch.tensor([ids_of("헌법 ") + [258] + ids_of(" 조") + [EOS_ID]])
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                               do_sample=False, eos_token_id=[EOS_ID, 257])[0].tolist()
    span = split_spans(generated, 1)[0]

    assert main([str(tmp_path / "model"), "헌법 <mask> 조", "--max-new-tokens", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"헌법 {span} 조"
    assert lines[1] == f"  [0] sentinel 258: {span!r}"


class _FixedGenerator:
    """A stand-in model whose generation is known, so fill's own work is what is checked."""

    device = "cpu"

    def __init__(self, generated: list[int]):
        self.generated = generated
        self.stops = None

    def generate(self, **kwargs):
        import torch

        self.stops = kwargs["eos_token_id"]
        return torch.tensor([self.generated])


def test_fill_splices_generated_spans_into_the_text():
    from pretrain.fill import fill

    model = _FixedGenerator([0, 258] + ids_of("민국") + [257])  # stopped by the sentinel after the span
    result = fill(model, "헌법 <mask> 조")
    assert result.text == "헌법 민국 조" and result.spans == ["민국"]
    assert model.stops == [EOS_ID, 257]
