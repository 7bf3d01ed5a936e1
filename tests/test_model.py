"""GBSWT5 model: config, checkpoint compatibility with ETRI's layout, forward/loss/generate, attention paths."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput


from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration
from pretrain.modeling.modeling_gbswt5 import ATTENTION_DEFAULT

BYT5_LARGE_PARAMS = 1_227_593_728
GBST_PARAMS_1536 = 2_377_729


def etri_state_dict_keys(config: GBSWT5Config) -> set[str]:
    """The keys ETRI's GBSWT5ForConditionalGeneration.state_dict() holds (transformers 4.39-4.45).

    Its encoder GBSWT module holds the shared nn.Embedding as `embeds` and the decoder T5Stack
    holds it as `embed_tokens`, so the tied table appears under three names; torch.save of that
    state dict (the released pytorch_model.bin) keeps all three.
    """
    ff = ["wi_0", "wi_1", "wo"] if config.is_gated_act else ["wi", "wo"]
    keys = {"shared.weight", "encoder.embed_tokens.embeds.weight", "decoder.embed_tokens.weight", "lm_head.weight",
            "encoder.final_layer_norm.weight", "decoder.final_layer_norm.weight"}
    keys |= {f"encoder.embed_tokens.positional_convol.2.{conv}.{p}" for conv in ("convol", "proj") for p in ("weight", "bias")}
    keys |= {"encoder.embed_tokens.cand_scoring.0.weight", "encoder.embed_tokens.cand_scoring.0.bias"}
    for stack, layers in (("encoder", config.num_layers), ("decoder", config.num_decoder_layers)):
        keys.add(f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
        for i in range(layers):
            prefix = f"{stack}.block.{i}.layer"
            keys |= {f"{prefix}.0.SelfAttention.{p}.weight" for p in "qkvo"} | {f"{prefix}.0.layer_norm.weight"}
            ff_index = 1
            if stack == "decoder":
                keys |= {f"{prefix}.1.EncDecAttention.{p}.weight" for p in "qkvo"} | {f"{prefix}.1.layer_norm.weight"}
                ff_index = 2
            keys |= {f"{prefix}.{ff_index}.DenseReluDense.{w}.weight" for w in ff} | {f"{prefix}.{ff_index}.layer_norm.weight"}
    return keys


def tiny_model(**overrides) -> GBSWT5ForConditionalGeneration:
    torch.manual_seed(0)
    return GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", **overrides)).eval()


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(3, 259, (length,), generator=gen)
        ids[row, length - 1] = 1
        mask[row, :length] = 1
    return ids, mask


# ---------------------------------------------------------------- config


def test_presets_have_byt5_dimensions_and_released_gbst_settings() -> None:
    large = GBSWT5Config.from_preset("large")
    assert (large.d_model, large.d_ff, large.num_layers, large.num_decoder_layers, large.num_heads) == (1536, 3840, 36, 12, 16)
    small = GBSWT5Config.from_preset("small", dropout_rate=0.1)
    assert (small.d_model, small.num_layers, small.num_decoder_layers, small.dropout_rate) == (1472, 12, 4, 0.1)
    for cfg in (large, small, GBSWT5Config.from_preset("base"), GBSWT5Config.from_preset("tiny")):
        assert cfg.model_type == "gbswt5" and cfg.vocab_size == 384 and not cfg.tie_word_embeddings
        assert cfg.block_sizes == (1, 2, 3, 6, 9) and cfg.downsample_factor == 3 and cfg.score_consensus_attn
    with pytest.raises(ValueError, match="huge"):
        GBSWT5Config.from_preset("huge")


def test_config_accepts_blocks_as_lists_tuples_or_sizes_and_round_trips(tmp_path) -> None:
    as_lists = GBSWT5Config(subword_blocks=[[1, 0], [2, 0], [3, 0]])
    as_sizes = GBSWT5Config(subword_blocks=(1, 2, 3))
    assert as_lists.subword_blocks == as_sizes.subword_blocks == ((1, 0), (2, 0), (3, 0))
    assert GBSWT5Config(subword_blocks=None, max_subword_block_size=4).block_sizes == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="offset"):
        GBSWT5Config(subword_blocks=[[2, 2]])
    cfg = GBSWT5Config.from_preset("base", z_loss=0.0)
    cfg.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, GBSWT5Config)
    assert loaded.subword_blocks == cfg.subword_blocks and loaded.z_loss == 0.0 and loaded.d_ff == 3968


def released_config_json() -> dict:
    """A config.json as ETRI's code writes it under transformers 4.4x (blocks as JSON lists)."""
    return {
        "_name_or_path": "etri-lirs/gbst-kebyt5-base-preview", "architectures": ["GBSWT5ForConditionalGeneration"],
        "d_ff": 128, "d_kv": 32, "d_model": 64, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new",
        "downsample_factor": 3, "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
        "gbst_batchnorm": False, "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True,
        "layer_norm_epsilon": 1e-06, "max_subword_block_size": None, "model_type": "gbswt5", "num_decoder_layers": 1,
        "num_heads": 2, "num_layers": 3, "pad_token_id": 0, "relative_attention_max_distance": 128,
        "relative_attention_num_buckets": 32, "score_consensus_attn": True,
        "subword_blocks": [[1, 0], [2, 0], [3, 0], [6, 0], [9, 0]], "tie_word_embeddings": False,
        "torch_dtype": "float32", "transformers_version": "4.40.2", "use_cache": True, "vocab_size": 384, "z_loss": 0.0001,
    }


# ---------------------------------------------------------------- checkpoint layout


def test_state_dict_keys_and_shapes_match_etri_layout() -> None:
    model = tiny_model()
    state = model.state_dict()
    assert set(state) == etri_state_dict_keys(model.config)
    d = model.config.d_model
    expected = {
        "encoder.embed_tokens.embeds.weight": (384, d),
        "encoder.embed_tokens.positional_convol.2.convol.weight": (d, 1, 9),
        "encoder.embed_tokens.positional_convol.2.convol.bias": (d,),
        "encoder.embed_tokens.positional_convol.2.proj.weight": (d, d, 1),
        "encoder.embed_tokens.positional_convol.2.proj.bias": (d,),
        "encoder.embed_tokens.cand_scoring.0.weight": (1, d),
        "encoder.embed_tokens.cand_scoring.0.bias": (1,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert state["encoder.embed_tokens.embeds.weight"].data_ptr() == state["shared.weight"].data_ptr()
    assert state["decoder.embed_tokens.weight"].data_ptr() == state["shared.weight"].data_ptr()
    assert state["lm_head.weight"].data_ptr() != state["shared.weight"].data_ptr()


def etri_style_state_dict(model: GBSWT5ForConditionalGeneration, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors under ETRI's key set, the three embedding names sharing one tensor."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in model.state_dict().items():
        state[key] = torch.randn(tensor.shape, generator=gen)
    shared = state["shared.weight"]
    state["encoder.embed_tokens.embeds.weight"] = shared
    state["decoder.embed_tokens.weight"] = shared
    return state


def test_strict_load_of_etri_state_dict() -> None:
    model = tiny_model()
    state = etri_style_state_dict(model, seed=1)
    assert set(state) == etri_state_dict_keys(model.config)
    model.load_state_dict(state, strict=True)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key
    assert model.encoder.embed_tokens.embeds.weight is model.shared.weight


def test_large_preset_parameter_count() -> None:
    with torch.device("meta"):
        model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("large"))
        byt5 = T5ForConditionalGeneration(T5Config(vocab_size=384, d_model=1536, d_ff=3840, num_layers=36,
                                                   num_decoder_layers=12, num_heads=16, feed_forward_proj="gated-gelu"))
    gbst = sum(p.numel() for p in model.encoder.embed_tokens.parameters()) - 384 * 1536
    assert gbst == GBST_PARAMS_1536
    # ByT5-large's published parameter count (1,227,593,728) is what transformers 5's
    # T5ForConditionalGeneration counts: it ties lm_head to the byte table at construction.
    # ByT5/GBSWT5 checkpoints keep a separate lm_head (tie_word_embeddings false), which adds one
    # 384 x 1536 matrix.
    assert sum(p.numel() for p in byt5.parameters()) == BYT5_LARGE_PARAMS
    assert sum(p.numel() for p in model.parameters()) == BYT5_LARGE_PARAMS + GBST_PARAMS_1536 + 384 * 1536


# ---------------------------------------------------------------- forward, loss, attention


def test_logits_do_not_depend_on_batch_padding() -> None:
    model = tiny_model()
    ids, mask = padded_batch([23, 70, 41])
    labels = torch.randint(3, 259, (3, 9))
    batched = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    for row in range(3):
        length = int(mask[row].sum())
        alone = model(input_ids=ids[row : row + 1, :length], attention_mask=mask[row : row + 1, :length],
                      labels=labels[row : row + 1]).logits
        torch.testing.assert_close(batched[row], alone[0], rtol=1e-5, atol=1e-5)


def test_sdpa_eager_and_default_attention_agree() -> None:
    default = tiny_model()
    models = {"default": default}
    for name in ("sdpa", "eager"):
        models[name] = GBSWT5ForConditionalGeneration._from_config(copy.deepcopy(default.config), attn_implementation=name).eval()
        models[name].load_state_dict(default.state_dict())
        assert models[name].encoder.config._attn_implementation == name
        assert models[name].decoder.config._attn_implementation == name
    assert default.encoder.config._attn_implementation == ATTENTION_DEFAULT
    ids, mask = padded_batch([50, 31])
    labels = torch.randint(3, 259, (2, 12))
    out = {name: model(input_ids=ids, attention_mask=mask, labels=labels) for name, model in models.items()}
    torch.testing.assert_close(out["sdpa"].logits, out["eager"].logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["sdpa"].loss, out["eager"].loss, rtol=1e-5, atol=1e-5)
    # The default dispatches by device: eager on CPU, SDPA elsewhere.
    assert torch.equal(out["default"].logits, out["eager"].logits)


def test_loss_ignores_minus_100_and_adds_per_token_z_loss() -> None:
    model = tiny_model(z_loss=0.0)
    ids, mask = padded_batch([40, 30])
    labels = torch.randint(3, 259, (2, 10))
    labels[1, 6:] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    kept = labels != -100
    logits = out.logits[kept]
    expected_ce = F.cross_entropy(logits, labels[kept])
    torch.testing.assert_close(out.loss, expected_ce)

    model.config.z_loss = 1e-2
    with_z = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    expected_z = torch.logsumexp(logits, dim=-1).square().mean()
    torch.testing.assert_close(with_z, expected_ce + 1e-2 * expected_z)


def test_bf16_forward_and_backward_on_cpu() -> None:
    model = tiny_model()
    ids, mask = padded_batch([60, 45])
    labels = torch.randint(3, 259, (2, 10))
    reference = model(input_ids=ids, attention_mask=mask, labels=labels)
    bf16 = copy.deepcopy(model).to(torch.bfloat16).train()
    out = bf16(input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    assert torch.isfinite(out.loss)
    assert abs(out.loss.item() - reference.loss.item()) < 0.05 * reference.loss.item()
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in bf16.parameters() if p.grad is not None)


@pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")
def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    ids, mask = padded_batch([50, 33])
    labels = torch.randint(3, 259, (2, 11))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-4, msg=name)


def test_generate_with_and_without_precomputed_encoder_outputs() -> None:
    model = tiny_model()
    ids, mask = padded_batch([40, 25])
    generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert generated.shape[0] == 2 and (generated[:, 0] == 0).all()
    encoder_outputs = model.get_encoder()(input_ids=ids, attention_mask=mask)
    again = model.generate(encoder_outputs=encoder_outputs, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert torch.equal(again, generated)
    # Outputs computed elsewhere (no downsampled mask attached): the byte mask is downsampled.
    plain = BaseModelOutput(last_hidden_state=encoder_outputs.last_hidden_state)
    third = model.generate(encoder_outputs=plain, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert torch.equal(third, generated)


# ---------------------------------------------------------------- released checkpoints


def test_from_pretrained_of_released_style_bin_checkpoint(tmp_path) -> None:
    reference = GBSWT5ForConditionalGeneration(GBSWT5Config(**released_config_json()))
    state = etri_style_state_dict(reference, seed=2)
    (tmp_path / "config.json").write_text(json.dumps(released_config_json()))
    torch.save(state, tmp_path / "pytorch_model.bin")
    for loader in (GBSWT5ForConditionalGeneration, AutoModelForSeq2SeqLM):
        model = loader.from_pretrained(tmp_path)
        assert isinstance(model, GBSWT5ForConditionalGeneration)
        assert model.config.subword_blocks == ((1, 0), (2, 0), (3, 0), (6, 0), (9, 0))
        for key, tensor in model.state_dict().items():
            assert torch.equal(tensor, state[key]), key
        assert model.encoder.embed_tokens.embeds.weight is model.shared.weight
        assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"gbst_batchnorm": True}, "gbst_batchnorm"),
    ({"subword_blocks": [[1, 0], [2, 1]]}, "non-zero offset"),
])
def test_unsupported_gbst_settings_are_refused_by_name(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", **overrides))
