"""GBSWT5: ETRI's GBST-T5 (Charformer GBST on a byte-level T5 encoder) on transformers 5.

Self-contained on purpose (torch/transformers imports plus the sibling config): `save_pretrained`
ships this file as remote code. Parameter names and shapes are exactly those of ETRI's gbswt5, so
released checkpoints load with `strict=True` and ETRI's code loads ours (docs/ARCHITECTURE.md, GBST).

Decisions about the reference implementation's quirks (docs/ARCHITECTURE.md, GBST), tested in
tests/test_model*.py:
- Pad embeddings are zeroed before the positional convolution, so a sequence's output does not
  depend on the padding that follows it. On unpadded input with an all-ones mask this is the
  reference algorithm exactly.
- `attention_mask=None` means "every byte is valid", i.e. the same as an all-ones mask (the
  reference instead averaged its own block padding into the means when no mask was given).
- New GBST parameters are always initialised explicitly (`GBST.reset_parameters`), never left as
  uninitialised memory.
- z-loss is the per-token mean of logsumexp(logits)^2 over the non-ignored labels (T5X/Mesh TF);
  the reference squared one logsumexp over all flattened logits, which depends on batch shape.
- GBST's scoring (block scores, softmax over block sizes, consensus attention) runs in float32 (or
  wider) whatever the model dtype, so bf16 works on CPU and GPU without autocast tricks.
- The encoder stack is our own subclass of transformers' T5Stack fed by GBST; the reference's
  stack needs transformers 4.39-4.45.

GBST is computed in an algebraically equivalent but cheaper order than the reference: the 1x1
projection and the candidate scoring are linear, so scores are computed from one dot product per
byte and the projection is applied after downsampling (on s/3 positions instead of s); the block
means, candidate mixture and downsampling collapse into one small banded matrix product per block
size. No candidate tensor of shape (b, s, blocks, d) is ever materialised.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface, GenerationMixin
from transformers import initialization as init
from transformers.masking_utils import eager_mask
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5PreTrainedModel, T5Stack, eager_attention_forward

from .configuration_gbswt5 import GBSWT5Config


def _additive_mask(position_bias: torch.Tensor | None, attention_mask: torch.Tensor | None, query: torch.Tensor):
    """T5's relative-position bias plus the (float, additive) padding/causal mask, in the query's dtype."""
    if position_bias is None:
        return attention_mask
    bias = position_bias if attention_mask is None else position_bias + attention_mask
    return bias.to(query.dtype)


def _sdpa_with_bias(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
    scaling: float | None = None, dropout: float = 0.0, position_bias: torch.Tensor | None = None, **kwargs,
) -> tuple[torch.Tensor, None]:
    """torch's scaled_dot_product_attention with bias + mask as one float additive mask.

    On CUDA the memory-efficient and cuDNN kernels take a float mask and return its gradient, so
    the learned bias trains without materialising the attention matrix. Our own call (not
    transformers' sdpa_attention_forward) so that the bias handling does not depend on the
    transformers version.
    """
    mask = _additive_mask(position_bias, attention_mask, query)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def _sdpa_off_cpu(module: nn.Module, query: torch.Tensor, *args, **kwargs):
    """SDPA (`_sdpa_with_bias`) on accelerators, transformers' eager attention on CPU.

    On CPU the learned bias (it needs a gradient) sends SDPA to its math kernel, which measured
    slower than eager for a training step (bench/bench_model.py part c). This is the default on
    GPUs rather than FlexAttention: its backward has no atomic adds into the bias (FlexAttention
    accumulates the bias table's gradient with atomic adds, so two runs differ in the last bits and
    a resumed run would not be bitwise equal to an unbroken one).
    """
    attention = eager_attention_forward if query.device.type == "cpu" else _sdpa_with_bias
    return attention(module, query, *args, **kwargs)


_COMPILED_FLEX = None


def _flex_kernel():
    """flex_attention, compiled once (uncompiled it is a dense reference implementation)."""
    global _COMPILED_FLEX
    from torch.nn.attention.flex_attention import flex_attention

    if _COMPILED_FLEX is None:
        _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
    return _COMPILED_FLEX


def _flex_with_bias(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
    scaling: float | None = None, dropout: float = 0.0, position_bias: torch.Tensor | None = None, **kwargs,
) -> tuple[torch.Tensor, None]:
    """FlexAttention whose score_mod reads T5's bucketed bias table (num_buckets, heads) directly.

    Self-attention layers find the table of their stack's first layer (`_bias_source`, set by
    `link_bias_tables`); cross-attention has no position bias. The padding/causal mask is the
    same additive mask eager attention adds. Compiled on accelerators; on CPU the uncompiled
    reference (torch has no CPU backward for it: tests only).
    """
    from torch.nn.attention.flex_attention import flex_attention

    if dropout:
        raise ValueError("flex attention has no attention dropout: train with dropout_rate=0 or another attention")
    if module.has_relative_attention_bias:
        source = module
    elif hasattr(module, "_bias_source"):
        source = module._bias_source
    else:
        raise ValueError("flex attention needs link_bias_tables(model) first (it finds each layer's bias table)")
    q_len, k_len = query.shape[-2], key.shape[-2]
    table = buckets = None
    if source is not None:
        # Queries are the last q_len of k_len positions (k_len > q_len only when decoding with a cache).
        context = torch.arange(q_len, device=query.device)[:, None] + (k_len - q_len)
        buckets = source._relative_position_bucket(
            torch.arange(k_len, device=query.device)[None, :] - context,
            bidirectional=not source.is_decoder, num_buckets=source.relative_attention_num_buckets,
            max_distance=source.relative_attention_max_distance,
        )
        table = source.relative_attention_bias.weight
    mask = None if attention_mask is None else attention_mask.expand(query.shape[0], 1, q_len, k_len)

    def score_mod(score, b, h, q_idx, kv_idx):
        if table is not None:
            score = score + table[buckets[q_idx, kv_idx], h]
        if mask is not None:
            score = score + mask[b, 0, q_idx, kv_idx]
        return score

    kernel = flex_attention if query.device.type == "cpu" else _flex_kernel()
    out = kernel(query, key, value, score_mod=score_mod, scale=1.0 if scaling is None else scaling)
    return out.transpose(1, 2).contiguous(), None


def link_bias_tables(model: nn.Module) -> None:
    """Point every self-attention of a T5 encoder-decoder at the one that owns its stack's bias
    table (layer 0), and cross-attention at none, for `_flex_with_bias`. Plain attributes, not
    submodules: state dicts are unchanged. GBSWT5 links itself; plain ByT5 needs this call."""
    for stack in (model.encoder, model.decoder):
        owner = stack.block[0].layer[0].SelfAttention
        for block in stack.block:
            if block.layer[0].SelfAttention is not owner:
                object.__setattr__(block.layer[0].SelfAttention, "_bias_source", owner)
            if stack.is_decoder:
                object.__setattr__(block.layer[1].EncDecAttention, "_bias_source", None)


# Attention implementations (`attn_implementation=`): the default (SDPA on accelerators, eager on
# CPU), SDPA everywhere, FlexAttention. Each receives the mask as eager attention does (additive).
ATTENTION_DEFAULT = "gbswt5_sdpa_off_cpu"
ATTENTION_SDPA = "gbswt5_sdpa"
ATTENTION_FLEX = "gbswt5_flex"
for _name, _function in ((ATTENTION_DEFAULT, _sdpa_off_cpu), (ATTENTION_SDPA, _sdpa_with_bias), (ATTENTION_FLEX, _flex_with_bias)):
    AttentionInterface.register(_name, _function)
    AttentionMaskInterface.register(_name, eager_mask)


# GBST's leaf modules initialise themselves (identity-like, see GBST.reset_parameters). They are
# the only place this can live: transformers 5 skips `_init_weights` on custom-code modules that
# own no parameters directly (GBST, its containers), so a parent-level init would never run.
class _DepthwiseConv(nn.Conv1d):
    """Tap 0 = 1, other taps and bias 0: position t starts out seeing byte t only."""

    def reset_parameters(self) -> None:
        tap0 = torch.zeros_like(self.weight)
        tap0[:, :, 0] = 1.0
        init.copy_(self.weight, tap0)
        init.zeros_(self.bias)


class _PointwiseConv(nn.Conv1d):
    """Identity projection, zero bias."""

    def reset_parameters(self) -> None:
        eye = torch.eye(self.out_channels, self.in_channels, device=self.weight.device, dtype=self.weight.dtype)
        init.copy_(self.weight, eye.unsqueeze(-1))
        init.zeros_(self.bias)


class _Scorer(nn.Linear):
    """N(0, 1/sqrt(D)) weights (unit-scale scores for unit-scale inputs), zero bias."""

    def reset_parameters(self) -> None:
        init.normal_(self.weight, mean=0.0, std=self.in_features**-0.5)
        init.zeros_(self.bias)


_GBST_LEAVES = (_DepthwiseConv, _PointwiseConv, _Scorer)


class _ShiftedDepthwiseConv(torch.autograd.Function):
    """Depthwise "valid" Conv1d in (b, s, D) layout: h[t] = bias + sum_k taps[k] * x[t + k].

    K in-place multiply-adds forward and for the input's gradient, no layout transposes; the taps'
    gradient (one product per tap) is computed only when they train (not under freeze_gbst).
    torch's grouped Conv1d backward on CPU took ~70% of GBST's time (bench/bench_model.py part a).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        kernel = taps.shape[0]
        n = x.shape[1] - kernel + 1
        h = torch.addcmul(bias, x[:, :n], taps[0])
        for k in range(1, kernel):
            h.addcmul_(x[:, k : k + n], taps[k])
        ctx.save_for_backward(x, taps)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        x, taps = ctx.saved_tensors
        want_x, want_taps, want_bias = ctx.needs_input_grad
        kernel, n = taps.shape[0], grad_h.shape[1]
        grad_x = torch.zeros_like(x) if want_x else None
        grad_taps = torch.empty_like(taps) if want_taps else None
        for k in range(kernel):
            if want_x:
                grad_x[:, k : k + n].addcmul_(grad_h, taps[k])
            if want_taps:
                grad_taps[k] = (grad_h * x[:, k : k + n]).sum((0, 1))
        return grad_x, grad_taps, grad_h.sum((0, 1)) if want_bias else None


class _PositionalConv(nn.Module):
    """Depthwise Conv1d(D, D, K) then pointwise Conv1d(D, D, 1): ETRI's `Depthwise1dConv` parameters."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.convol = _DepthwiseConv(dim, dim, kernel_size, groups=dim)
        self.proj = _PointwiseConv(dim, dim, 1)


class GBST(nn.Module):
    """Gradient-based subword tokenisation (docs/ARCHITECTURE.md, GBST): bytes (b, s) -> (b, ceil(s/ds), D).

    `forward(input_ids, attention_mask)` returns the downsampled hidden states and the downsampled
    mask (a group of `downsample_factor` bytes is valid if any byte in it is valid).
    """

    def __init__(
        self,
        embeds: nn.Embedding,
        block_sizes: tuple[int, ...] = (1, 2, 3, 6, 9),
        downsample_factor: int = 3,
        score_consensus_attn: bool = True,
    ) -> None:
        super().__init__()
        dim = embeds.embedding_dim
        self.block_sizes = tuple(int(m) for m in block_sizes)
        self.max_block_size = max(self.block_sizes)
        if not 1 <= downsample_factor <= self.max_block_size:
            raise ValueError(f"downsample_factor {downsample_factor} must be in [1, largest block size {self.max_block_size}]")
        self.downsample_factor = int(downsample_factor)
        self.score_consensus_attn = score_consensus_attn
        # The reference pads to lcm(block sizes); the downsample factor joins it so that the final
        # truncation to ceil(s/ds)*ds can never exceed the padded length (the reference crashed there).
        self.pad_multiple = math.lcm(*self.block_sizes, self.downsample_factor)
        self.embeds = embeds  # the model's shared byte table (tied, not copied)
        # Container keys reproduce ETRI's nn.Sequential indices: positional_convol.2.*, cand_scoring.0.*
        self.positional_convol = nn.ModuleDict({"2": _PositionalConv(dim, self.max_block_size)})
        self.cand_scoring = nn.ModuleList([_Scorer(dim, 1)])

    @property
    def conv(self) -> _PositionalConv:
        return self.positional_convol["2"]

    def reset_parameters(self) -> None:
        """Identity initialisation: the positional conv passes byte t through (tap 0 = 1), the
        projection is the identity, biases are zero, and the scorer is N(0, 1/sqrt(D)).

        A warm-started model therefore starts from ByT5's own embedding scale (block means of
        byte embeddings) instead of the reference's N(0, 1) weights, which multiply it by ~sqrt(D),
        and nothing is left uninitialised. Uses transformers' init helpers, which skip tensors
        already loaded from a checkpoint.
        """
        for module in self.modules():
            if isinstance(module, _GBST_LEAVES):
                module.reset_parameters()

    def downsample_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """Byte-level mask (b, s) -> (b, ceil(s/ds)) mask of the GBST output, same dtype."""
        ds = self.downsample_factor
        groups = -(-attention_mask.shape[1] // ds)
        valid = F.pad(attention_mask.bool(), (0, groups * ds - attention_mask.shape[1]))
        return valid.view(valid.shape[0], groups, ds).any(-1).to(attention_mask.dtype)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, s = input_ids.shape
        n = -(-s // self.pad_multiple) * self.pad_multiple
        groups = -(-s // self.downsample_factor)
        valid = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()

        # 1-2. Embed, zero the pads (quirk fix: padding invariance), depthwise conv over bytes
        # t..t+K-1, already right-padded to the block multiple n (step 3).
        x = self.embeds(input_ids) * valid.unsqueeze(-1).to(self.embeds.weight.dtype)
        x = F.pad(x, (0, 0, 0, n - s + self.max_block_size - 1))
        conv = self.conv
        h = _ShiftedDepthwiseConv.apply(x, conv.convol.weight[:, 0, :].t(), conv.convol.bias)

        maskf = F.pad(valid, (0, n - s)).to(torch.promote_types(h.dtype, torch.float32))
        # Scoring stays in float32 (or wider) also under autocast, which would run SDPA in bf16.
        # Valid bytes per block, for each block size: shared by the scores and the mixture.
        block_counts = [maskf.view(b, n // m, m).sum(-1) for m in self.block_sizes]
        with torch.autocast(device_type=h.device.type, enabled=False):
            probs = self._block_probabilities(h, maskf, block_counts)
            if self.score_consensus_attn:
                probs = self._consensus(probs, maskf)
        mixed, group_valid = self._mix_and_downsample(h, probs, maskf, block_counts)

        # The 1x1 projection, moved after downsampling: it commutes with the convex mixture, and
        # its bias survives only in groups with a valid byte (the reference's masked mean gives 0).
        mixed, group_valid = mixed[:, :groups], group_valid[:, :groups]
        out = F.linear(mixed, conv.proj.weight[:, :, 0], conv.proj.bias) * group_valid.unsqueeze(-1).to(mixed.dtype)
        return out, group_valid.to(attention_mask.dtype if attention_mask is not None else torch.bool)

    def _block_probabilities(self, h: torch.Tensor, maskf: torch.Tensor, block_counts: list[torch.Tensor]) -> torch.Tensor:
        """Steps 4-5 for the scores only: softmax over block sizes of Linear(block mean of proj(h)).

        Linear(mean(proj(h))) == mean(w_eff . h) + b_eff on a valid block, so one dot product per
        byte replaces scoring (b, n, blocks, D) candidates. `block_counts[i]` is (b, n/m) valid bytes
        per block of size m = block_sizes[i]. Returns (b, n, blocks) in maskf's dtype.
        """
        b, n = maskf.shape
        dtype = maskf.dtype
        proj_w, proj_b = self.conv.proj.weight[:, :, 0].to(dtype), self.conv.proj.bias.to(dtype)
        scorer_w, scorer_b = self.cand_scoring[0].weight.to(dtype), self.cand_scoring[0].bias.to(dtype)
        w_eff = (scorer_w @ proj_w).squeeze(0)
        b_eff = (scorer_w @ proj_b + scorer_b).squeeze(0)
        u = (h.to(dtype) @ w_eff) * maskf
        scores = []
        for m, counts in zip(self.block_sizes, block_counts):
            score = u.view(b, n // m, m).sum(-1) / counts.clamp(min=1.0) + b_eff
            scores.append(score.masked_fill(counts == 0, -torch.finfo(dtype).max).repeat_interleave(m, dim=1))
        return torch.stack(scores, dim=-1).softmax(dim=-1)

    @staticmethod
    def _consensus(probs: torch.Tensor, maskf: torch.Tensor) -> torch.Tensor:
        """Step 6: softmax(P P^T) P over valid positions, as one fused attention call.

        Rows of pads are never used (the downsampling masks them out); a sequence with no valid
        byte attends to all positions so that no row is empty.
        """
        keys = maskf.bool()
        keys = keys | ~keys.any(-1, keepdim=True)
        probs = probs.unsqueeze(1)
        return F.scaled_dot_product_attention(probs, probs, probs, attn_mask=keys[:, None, None, :], scale=1.0).squeeze(1)

    def _mix_and_downsample(
        self, h: torch.Tensor, probs: torch.Tensor, maskf: torch.Tensor, block_counts: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 4 and 7: block means, probability-weighted mixture, masked mean over groups of ds.

        All three are linear in h, so for each block size m they form one banded matrix applied
        per window of lcm(m, ds) bytes: output group g gets
        sum_{t in g} [valid_t p_m(t) / n_g] * sum_{t' in block(t)} [valid_t' / n_block(t)] h_t'.
        Returns the (b, n/ds, D) mixture before projection and each group's validity.
        """
        b, n = maskf.shape
        ds = self.downsample_factor
        group_counts = maskf.view(b, n // ds, ds).sum(-1)
        weights = probs * (maskf / group_counts.clamp(min=1.0).repeat_interleave(ds, dim=1)).unsqueeze(-1)
        mixed = h.new_zeros(b, n // ds, h.shape[-1])
        for i, m in enumerate(self.block_sizes):
            window = math.lcm(m, ds)
            blocks_per_window = window // m
            pos = torch.arange(window, device=h.device)
            pair = (pos // ds) * blocks_per_window + pos // m  # (group, block) of each byte in the window
            indicator = F.one_hot(pair, (window // ds) * blocks_per_window).to(maskf.dtype)
            per_block = weights[..., i].reshape(b, n // window, window) @ indicator
            per_block = per_block.view(b, n // window, window // ds, blocks_per_window)
            per_byte = (maskf.view(b, n // m, m) / block_counts[i].clamp(min=1.0).unsqueeze(-1)).view(b, n // window, 1, window)
            band = per_block.repeat_interleave(m, dim=-1) * per_byte
            mixed = mixed + (band.to(h.dtype) @ h.view(b, n // window, window, -1)).view(b, n // ds, -1)
        return mixed, group_counts > 0


def span_loss(logits: torch.Tensor, labels: torch.Tensor, z_loss: float = 0.0) -> torch.Tensor:
    """Token-mean cross entropy (labels -100 ignored) + z_loss * token-mean logsumexp(logits)^2.

    Computed in float32 at least, whatever the model dtype. The training loop uses it for plain
    ByT5 too, so both model types train on one loss definition.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)).view(-1, logits.shape[-1])
    labels = labels.to(logits.device).view(-1)
    loss = F.cross_entropy(logits, labels, ignore_index=-100)
    if z_loss:
        kept = labels != -100
        log_z = torch.logsumexp(logits[kept], dim=-1)
        loss = loss + z_loss * log_z.square().sum() / kept.sum().clamp(min=1)
    return loss


class _ChunkedSpanLoss(torch.autograd.Function):
    """`span_loss(hidden @ weight.T, labels, z_loss)` without the whole batch's float32 logits.

    Logits are formed `chunk` tokens at a time (in the weight's dtype, upcast as span_loss does)
    and their gradient is taken there and then, as Liger's fused linear cross entropy does, so the
    peak is one chunk's (chunk, vocab) float32 logits instead of twice the batch's. The gradients
    of hidden and weight come out of the forward; backward only scales them.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, z_loss: float, chunk: int):
        kept = labels != -100
        count = kept.sum().clamp(min=1).to(torch.float32)
        wide = torch.promote_types(weight.dtype, torch.float32)
        loss = torch.zeros((), dtype=wide, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=wide)
        for start in range(0, hidden.shape[0], chunk):
            h, y, keep = hidden[start : start + chunk], labels[start : start + chunk], kept[start : start + chunk]
            logits = F.linear(h, weight).to(wide)
            log_z = torch.logsumexp(logits, dim=-1)
            target = logits.gather(1, y.clamp(min=0).unsqueeze(1)).squeeze(1)
            keepf = keep.to(wide)
            loss += ((log_z - target + z_loss * log_z.square()) * keepf).sum()
            # d/dlogits: softmax (1 + 2 z log_z) - onehot(label), per kept token, over count.
            grad = torch.softmax(logits, dim=-1) * ((1.0 + 2.0 * z_loss * log_z) * keepf / count).unsqueeze(1)
            grad.scatter_add_(1, y.clamp(min=0).unsqueeze(1), (-keepf / count).unsqueeze(1))
            grad = grad.to(weight.dtype)
            grad_hidden[start : start + chunk] = grad @ weight
            grad_weight += (grad.t() @ h).to(wide)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return loss / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss.to(grad_hidden.dtype), grad_weight * grad_loss.to(grad_weight.dtype), None, None, None


# Tokens per chunk of the chunked loss: 4096 x 384 float32 logits = 6 MiB per chunk.
LOSS_CHUNK = 4096
LOSS_IMPLEMENTATIONS = ("logits", "chunked", "liger")


def _liger_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, z_loss: float) -> torch.Tensor | None:
    """Liger Kernel's fused linear cross entropy (`lse_square_scale` is exactly the z-loss term),
    or None where liger_kernel is not installed. Imported under try: transformers' remote-code
    import check then does not require it."""
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return liger_fused_linear_cross_entropy(
        hidden, weight, labels, ignore_index=-100, lse_square_scale=z_loss, reduction="mean",
    ).float()


def fused_span_loss(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, z_loss: float = 0.0,
    implementation: str = "chunked", chunk: int = LOSS_CHUNK,
) -> torch.Tensor:
    """`span_loss(F.linear(hidden, weight), labels, z_loss)` from the decoder's last hidden states
    (b, t, d) and the output matrix (vocab, d), never holding the whole batch's logits.

    "liger" (Liger Kernel's Triton kernel, CUDA only) falls back to the pure-torch "chunked" path
    where liger_kernel is not importable or the tensors are not on CUDA. Unlike span_loss, a batch
    without any kept label gives 0, not NaN.
    """
    hidden = hidden.reshape(-1, hidden.shape[-1])
    labels = labels.to(hidden.device).reshape(-1)
    loss = _liger_loss(hidden, weight, labels, z_loss) if implementation == "liger" and hidden.is_cuda else None
    if loss is not None:
        return loss
    return _ChunkedSpanLoss.apply(hidden, weight, labels, float(z_loss), chunk).float()


# What transformers calls the key/value cache, in T5Stack's arguments and its outputs:
# `past_key_values` up to 5.17 or so, `cache` from a later 5.x on. Both are supported, so the
# exported remote code runs with the transformers a user has (a GPU image's may be older).
CACHE = "cache" if "cache" in inspect.signature(T5Stack.forward).parameters else "past_key_values"
OUTPUT_CACHE = "cache" if "cache" in {f.name for f in dataclasses.fields(Seq2SeqLMOutput)} else "past_key_values"


@dataclass
class GBSWT5EncoderOutput(BaseModelOutput):
    """Encoder output plus the downsampled mask the decoder's cross-attention needs."""

    attention_mask: torch.Tensor | None = None


class GBSWT5PreTrainedModel(T5PreTrainedModel):
    config_class = GBSWT5Config
    config: GBSWT5Config

    def get_correct_attn_implementation(self, requested_attention: str | None, is_init_check: bool = False) -> str:
        if requested_attention is None:
            return ATTENTION_DEFAULT
        return super().get_correct_attn_implementation(requested_attention, is_init_check)

    def _init_weights(self, module: nn.Module) -> None:
        """T5's scheme (byte table and lm_head N(0, initializer_factor)); GBST's leaves their own."""
        if isinstance(module, _GBST_LEAVES):
            module.reset_parameters()
        else:
            super()._init_weights(module)


class GBSWT5EncoderStack(GBSWT5PreTrainedModel, T5Stack):
    """T5 encoder blocks over GBST's downsampled sequence (relative positions in downsampled steps).

    GBSWT5PreTrainedModel comes first so that transformers' per-submodel initialisation reaches GBST.
    """

    def __init__(self, config: GBSWT5Config, shared: nn.Embedding) -> None:
        if config.gbst_batchnorm:
            raise ValueError("gbst_batchnorm (experimental in ETRI's code, unused by released models) is not supported")
        if config.subword_blocks is not None and any(offset for _, offset in config.subword_blocks):
            raise ValueError("subword_blocks with a non-zero offset are not supported (released models use offset 0)")
        super().__init__(config)
        self.embed_tokens = GBST(shared, config.block_sizes, config.downsample_factor, config.score_consensus_attn)

    def get_input_embeddings(self) -> nn.Embedding:
        # The byte table, not GBST (whose output is a tuple): input-grad hooks attach here.
        return self.embed_tokens.embeds

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.embed_tokens.embeds = new_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> GBSWT5EncoderOutput:
        """Bytes -> GBST -> T5 blocks. `inputs_embeds` means already-downsampled GBST output with its mask."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds, attention_mask = self.embed_tokens(input_ids, attention_mask)
        kwargs.pop("use_cache", None)
        kwargs.pop("cache", None)
        kwargs.pop("past_key_values", None)
        out = super().forward(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)
        return GBSWT5EncoderOutput(
            last_hidden_state=out.last_hidden_state,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            attention_mask=attention_mask,
        )


class GBSWT5ForConditionalGeneration(GBSWT5PreTrainedModel, GenerationMixin):
    _keys_to_ignore_on_load_unexpected = [
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
    ]
    # The encoder's GBST and the decoder read the shared byte table whatever `tie_word_embeddings`
    # says; that flag only decides whether lm_head is tied too (ETRI/ByT5: it is not).
    _embedding_ties = {
        "encoder.embed_tokens.embeds.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }
    _tied_weights_keys = {**_embedding_ties, "lm_head.weight": "shared.weight"}

    def __init__(self, config: GBSWT5Config) -> None:
        super().__init__(config)
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)

        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        encoder_config.use_cache = False
        self.encoder = GBSWT5EncoderStack(encoder_config, self.shared)

        decoder_config = copy.deepcopy(config)
        decoder_config.is_decoder = True
        decoder_config.num_layers = config.num_decoder_layers
        self.decoder = T5Stack(decoder_config)
        self.decoder.embed_tokens = self.shared

        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        link_bias_tables(self)
        # How a training forward with labels computes its loss (LOSS_IMPLEMENTATIONS); not a
        # config field: it changes no result, only memory and speed. Set by the training setup.
        self.loss_implementation = "logits"
        self.post_init()

    def get_expanded_tied_weights_keys(self, all_submodels: bool = False) -> dict:
        tied = dict(self._embedding_ties)
        if self.config.tie_word_embeddings:
            tied["lm_head.weight"] = "shared.weight"
        return tied

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.shared = new_embeddings
        self.encoder.set_input_embeddings(new_embeddings)
        self.decoder.set_input_embeddings(new_embeddings)

    def get_encoder(self, modality: str | None = None) -> GBSWT5EncoderStack:
        return self.encoder

    def _encoder_mask(self, encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """The downsampled mask for cross-attention, also when encoder outputs were computed elsewhere."""
        mask = getattr(encoder_outputs, "attention_mask", None)
        if mask is not None or attention_mask is None:
            return mask
        if attention_mask.shape[1] == encoder_outputs.last_hidden_state.shape[1]:
            return attention_mask
        return self.encoder.embed_tokens.downsample_mask(attention_mask)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: tuple | BaseModelOutput | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        past_key_values=None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        cache = cache if cache is not None else past_key_values
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
            )
        encoder_mask = self._encoder_mask(encoder_outputs, attention_mask)

        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)

        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_mask,
            use_cache=use_cache,
            **{CACHE: cache},
            **kwargs,
        )
        sequence_output = decoder_outputs.last_hidden_state
        if self.config.tie_word_embeddings:
            sequence_output = sequence_output * (self.model_dim**-0.5)
        if labels is not None and self.training and self.loss_implementation != "logits":
            # Training needs the loss only: no logits tensor at all (see fused_span_loss).
            logits = None
            loss = fused_span_loss(sequence_output, self.lm_head.weight, labels, self.config.z_loss,
                                   self.loss_implementation)
        else:
            logits = self.lm_head(sequence_output)
            loss = self.loss(logits, labels) if labels is not None else None
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            **{OUTPUT_CACHE: getattr(decoder_outputs, CACHE)},
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return span_loss(logits, labels, self.config.z_loss)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self._shift_right(labels)


GBSWT5Config.register_for_auto_class()
GBSWT5ForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")
