"""GBST numerics against a slow, loop-based reference of docs/ARCHITECTURE.md, GBST, written here."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from pretrain.modeling import GBST

BLOCKS = (1, 2, 3, 6, 9)


def reference_gbst(gbst: GBST, ids: list[int], consensus: bool) -> torch.Tensor:
    """GBST steps 1-7 (docs/ARCHITECTURE.md, GBST) in explicit loops: one unpadded sequence, all-ones mask."""
    emb = gbst.embeds.weight
    conv_w = gbst.positional_convol["2"].convol.weight[:, 0, :]
    conv_b = gbst.positional_convol["2"].convol.bias
    proj_w = gbst.positional_convol["2"].proj.weight[:, :, 0]
    proj_b = gbst.positional_convol["2"].proj.bias
    score_w = gbst.cand_scoring[0].weight[0]
    score_b = gbst.cand_scoring[0].bias[0]
    s, dim, kernel = len(ids), emb.shape[1], max(BLOCKS)
    zero = torch.zeros(dim, dtype=emb.dtype)

    # 1-2. embeddings, K-1 zeros at the end, depthwise conv then pointwise conv
    x = [emb[i] for i in ids] + [zero] * (kernel - 1)
    h = []
    for t in range(s):
        acc = conv_b.clone()
        for k in range(kernel):
            acc = acc + conv_w[:, k] * x[t + k]
        h.append(proj_w @ acc + proj_b)
    # 3. pad to a multiple of lcm(block sizes); padding is invalid
    multiple = math.lcm(*BLOCKS)
    n = -(-s // multiple) * multiple
    valid = [t < s for t in range(n)]
    h += [zero] * (n - s)
    # 4. block means (aligned at 0) broadcast back to each position
    reps, rep_valid = [], []
    for m in BLOCKS:
        row, row_valid = [], []
        for t in range(n):
            members = [j for j in range((t // m) * m, (t // m) * m + m) if valid[j]]
            row.append(sum((h[j] for j in members), zero) / max(len(members), 1))
            row_valid.append(bool(members))
        reps.append(row)
        rep_valid.append(row_valid)
    # 5. score, mask, softmax over block sizes
    probs = []
    for t in range(n):
        raw = torch.stack([
            score_w @ reps[i][t] + score_b if rep_valid[i][t] else torch.tensor(-torch.finfo(emb.dtype).max, dtype=emb.dtype)
            for i in range(len(BLOCKS))
        ])
        probs.append(torch.softmax(raw, dim=0))
    # 6. consensus attention over valid positions
    if consensus:
        mixed = []
        for t in range(n):
            sims = torch.stack([probs[t] @ probs[j] if (valid[t] and valid[j]) else torch.tensor(-torch.finfo(emb.dtype).max, dtype=emb.dtype) for j in range(n)])
            attn = torch.softmax(sims, dim=0)
            mixed.append(sum((attn[j] * probs[j] for j in range(n)), torch.zeros(len(BLOCKS), dtype=emb.dtype)))
        probs = mixed
    # 7. weighted sum, truncate to ceil(s/ds)*ds, masked mean over groups of ds
    ds = gbst.downsample_factor
    out = [sum((probs[t][i] * reps[i][t] for i in range(len(BLOCKS))), zero) for t in range(n)]
    groups = -(-s // ds)
    result = []
    for g in range(groups):
        members = [t for t in range(g * ds, g * ds + ds) if valid[t]]
        result.append(sum((out[t] for t in members), zero) / max(len(members), 1))
    return torch.stack(result)


def random_gbst(dim: int = 16, consensus: bool = True, dtype: torch.dtype = torch.float64, seed: int = 0) -> GBST:
    torch.manual_seed(seed)
    gbst = GBST(nn.Embedding(384, dim), BLOCKS, downsample_factor=3, score_consensus_attn=consensus).to(dtype)
    with torch.no_grad():
        for param in gbst.parameters():
            param.normal_(0.0, 0.5)
    return gbst


@pytest.mark.parametrize("length", [1, 17, 36, 50])
@pytest.mark.parametrize("consensus", [True, False])
def test_matches_loop_reference_on_unpadded_input(length: int, consensus: bool) -> None:
    gbst = random_gbst(consensus=consensus)
    ids = torch.randint(3, 259, (1, length), generator=torch.Generator().manual_seed(length))
    out, mask = gbst(ids, torch.ones_like(ids))
    expected = reference_gbst(gbst, ids[0].tolist(), consensus)
    assert out.shape == (1, -(-length // 3), 16)
    assert mask.all()
    torch.testing.assert_close(out[0].detach(), expected.detach(), rtol=1e-10, atol=1e-10)


def test_none_mask_means_all_valid() -> None:
    gbst = random_gbst()
    ids = torch.randint(3, 259, (2, 50))
    with_mask, _ = gbst(ids, torch.ones_like(ids))
    without, mask = gbst(ids, None)
    torch.testing.assert_close(without, with_mask)
    assert mask.dtype == torch.bool and mask.all()


def test_padding_invariance_and_downsampled_mask() -> None:
    gbst = random_gbst()
    lengths = [5, 23, 50, 71]
    batch = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(batch)
    for row, length in enumerate(lengths):
        batch[row, :length] = torch.randint(3, 259, (length,))
        mask[row, :length] = 1
    out, out_mask = gbst(batch, mask)
    assert out_mask.dtype == mask.dtype
    for row, length in enumerate(lengths):
        alone, _ = gbst(batch[row : row + 1, :length], mask[row : row + 1, :length])
        groups = -(-length // 3)
        torch.testing.assert_close(out[row, :groups], alone[0], rtol=1e-10, atol=1e-10)
        assert out_mask[row, :groups].all() and not out_mask[row, groups:].any()
        assert (out[row, groups:] == 0).all()  # all-pad groups are 0, as the reference's masked mean
    torch.testing.assert_close(gbst.downsample_mask(mask), out_mask)


def test_fully_padded_row_is_finite_and_gradients_flow() -> None:
    gbst = random_gbst(dtype=torch.float32)
    ids = torch.randint(3, 259, (2, 40))
    mask = torch.ones_like(ids)
    mask[1] = 0
    out, _ = gbst(ids, mask)
    assert torch.isfinite(out).all() and (out[1] == 0).all()
    out.square().sum().backward()
    for name, param in gbst.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    assert gbst.embeds.weight.grad[0].abs().sum() == 0  # pad id 0 never reaches the output


def test_gradients_match_reference() -> None:
    gbst = random_gbst(dim=8)
    ids = torch.randint(3, 259, (1, 20))
    out, _ = gbst(ids, None)
    grads = torch.autograd.grad(out.sin().sum(), list(gbst.parameters()))
    expected = torch.autograd.grad(reference_gbst(gbst, ids[0].tolist(), True).sin().sum(), list(gbst.parameters()))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_frozen_gbst_still_trains_the_byte_table_exactly() -> None:
    """Under freeze_gbst only the byte table trains; the convolution then skips its taps' gradient."""
    gbst = random_gbst(dim=8)
    ids = torch.randint(3, 259, (1, 20))
    expected = torch.autograd.grad(reference_gbst(gbst, ids[0].tolist(), True).sin().sum(), gbst.embeds.weight)[0]
    for name, param in gbst.named_parameters():
        param.requires_grad_(name == "embeds.weight")
    out, _ = gbst(ids, None)
    out.sin().sum().backward()
    torch.testing.assert_close(gbst.embeds.weight.grad, expected, rtol=1e-9, atol=1e-9)
    assert all(p.grad is None for name, p in gbst.named_parameters() if name != "embeds.weight")


def test_bf16_runs_with_float32_scoring() -> None:
    gbst32 = random_gbst(dtype=torch.float32)
    gbst16 = copy.deepcopy(gbst32).to(torch.bfloat16)
    ids = torch.randint(3, 259, (2, 90))
    out32, _ = gbst32(ids, None)
    out16, _ = gbst16(ids, None)
    assert out16.dtype == torch.bfloat16 and torch.isfinite(out16).all()
    assert (out16.float() - out32).abs().max() <= 0.05 * out32.abs().max()


def test_scoring_stays_float32_under_autocast(monkeypatch) -> None:
    gbst = random_gbst(dtype=torch.float32)
    seen = []
    consensus = GBST._consensus

    def spy(probs: torch.Tensor, maskf: torch.Tensor) -> torch.Tensor:
        out = consensus(probs, maskf)
        seen.append((probs.dtype, out.dtype))
        return out

    monkeypatch.setattr(GBST, "_consensus", staticmethod(spy))
    ids = torch.randint(3, 259, (2, 60))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = gbst(ids, None)
    assert seen == [(torch.float32, torch.float32)]
    reference, _ = gbst(ids, None)
    assert (out.float() - reference).abs().max() <= 0.05 * reference.abs().max()
