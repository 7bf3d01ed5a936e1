"""GBSWT5 configuration: T5's fields plus ETRI's GBST fields (docs/ARCHITECTURE.md, GBST).

Self-contained on purpose (transformers imports only): `save_pretrained` ships this file as remote
code. Field names, meanings and defaults follow ETRI's `GBSWT5Config`, so a released `config.json`
loads unchanged and a config we write loads in ETRI's implementation; the recommended settings
live in the presets (`GBSWT5Config.from_preset`), not in the class defaults.
"""
from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

# ETRI's class default (a config that omits `subword_blocks` means these); released models and our
# presets use (1, 2, 3, 6, 9).
_ETRI_DEFAULT_BLOCKS = ((1, 0), (2, 0), (3, 0), (4, 0), (6, 0), (9, 0))
# GBST settings of the released GBST-KEByT5 models (presets and ByT5 warm starts use them).
RELEASED_GBST = dict(
    subword_blocks=((1, 0), (2, 0), (3, 0), (6, 0), (9, 0)),
    downsample_factor=3,
    score_consensus_attn=True,
    z_loss=1e-4,
    gbst_batchnorm=False,
)

# google/byt5-{small,base,large} dimensions (ByT5 layout: encoder 3x deeper than the decoder).
_BYT5_DIMS = {
    "small": dict(d_model=1472, d_ff=3584, num_layers=12, num_decoder_layers=4, num_heads=6),
    "base": dict(d_model=1536, d_ff=3968, num_layers=18, num_decoder_layers=6, num_heads=12),
    "large": dict(d_model=1536, d_ff=3840, num_layers=36, num_decoder_layers=12, num_heads=16),
    # Tests and demos: same layout and GBST, tiny widths.
    "tiny": dict(d_model=64, d_ff=128, num_layers=3, num_decoder_layers=1, num_heads=2, d_kv=32),
}


def normalize_blocks(blocks: Any) -> tuple[tuple[int, int], ...] | None:
    """Blocks as `((size, offset), ...)`; accepts JSON lists, bare sizes and tuples, as ETRI's code does."""
    if blocks is None:
        return None
    out = []
    for elem in blocks:
        size, offset = (elem, 0) if isinstance(elem, int) else tuple(elem)
        if not 0 <= int(offset) < int(size):
            raise ValueError(f"subword_blocks: offset {offset} must be in [0, block size {size})")
        out.append((int(size), int(offset)))
    if not out:
        raise ValueError("subword_blocks must not be empty")
    return tuple(out)


class GBSWT5Config(PretrainedConfig):
    model_type = "gbswt5"
    keys_to_ignore_at_inference = ["past_key_values"]
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }

    def __init__(
        self,
        vocab_size: int = 384,
        d_model: int = 512,
        d_kv: int = 64,
        d_ff: int = 2048,
        num_layers: int = 6,
        num_decoder_layers: int | None = None,
        num_heads: int = 8,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        dropout_rate: float = 0.1,
        layer_norm_epsilon: float = 1e-6,
        initializer_factor: float = 1.0,
        feed_forward_proj: str = "relu",
        is_encoder_decoder: bool = True,
        use_cache: bool = True,
        pad_token_id: int = 0,
        eos_token_id: int = 1,
        decoder_start_token_id: int = 0,
        tie_word_embeddings: bool = False,
        max_subword_block_size: int | None = None,
        subword_blocks: Any = _ETRI_DEFAULT_BLOCKS,
        downsample_factor: int = 1,
        score_consensus_attn: bool = True,
        z_loss: float = 1e-4,
        gbst_batchnorm: bool = False,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.d_kv = d_kv
        self.d_ff = d_ff
        self.num_layers = num_layers
        self.num_decoder_layers = num_decoder_layers if num_decoder_layers is not None else num_layers
        self.num_heads = num_heads
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_factor = initializer_factor
        self.feed_forward_proj = feed_forward_proj
        self.use_cache = use_cache
        act_info = feed_forward_proj.split("-")
        if (len(act_info) > 1 and act_info[0] != "gated") or len(act_info) > 2:
            raise ValueError(f"feed_forward_proj {feed_forward_proj!r} must be 'ACT' or 'gated-ACT'")
        self.dense_act_fn = "gelu_new" if feed_forward_proj == "gated-gelu" else act_info[-1]
        self.is_gated_act = act_info[0] == "gated"
        # ETRI/ByT5 meaning: False = lm_head is its own matrix (released models); True = tied to
        # the byte table with T5's d_model**-0.5 output rescaling.
        self.tie_word_embeddings = tie_word_embeddings
        self.max_subword_block_size = max_subword_block_size
        self.subword_blocks = normalize_blocks(subword_blocks)
        if self.subword_blocks is None and max_subword_block_size is None:
            raise ValueError("GBSWT5Config needs subword_blocks or max_subword_block_size")
        self.downsample_factor = downsample_factor
        self.score_consensus_attn = score_consensus_attn
        self.z_loss = z_loss
        self.gbst_batchnorm = gbst_batchnorm
        self.is_decoder = kwargs.pop("is_decoder", False)
        kwargs.pop("classifier_dropout", None)
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            is_encoder_decoder=is_encoder_decoder,
            **kwargs,
        )
        self.classifier_dropout = 0.0

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """GBST candidate block sizes; `max_subword_block_size` applies only without explicit blocks."""
        if self.subword_blocks is None:
            return tuple(range(1, self.max_subword_block_size + 1))
        return tuple(size for size, _ in self.subword_blocks)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "GBSWT5Config":
        """byt5-{small,base,large} dimensions with released GBST settings; `tiny` for tests and demos.

        Dropout is 0.0 (what pretraining used; google/byt5 configs say 0.1 for fine-tuning).
        """
        if name not in _BYT5_DIMS:
            raise ValueError(f"unknown GBSWT5 preset {name!r}; choose one of {sorted(_BYT5_DIMS)}")
        settings: dict[str, Any] = dict(
            vocab_size=384, d_kv=64, feed_forward_proj="gated-gelu", dropout_rate=0.0, tie_word_embeddings=False,
            **RELEASED_GBST,
        )
        settings.update(_BYT5_DIMS[name])
        settings.update(overrides)
        return cls(**settings)
