"""CPU API tests: strided inputs, empty shapes, the nn.Module, autograd, kernel selection."""
import pytest
import torch
import torch.nn as nn

import flashmin_nn

from helpers import (
    ERROR_TYPES,
    assert_attention_close,
    expect_error,
    make_qkv,
    random_bool_mask,
    randn,
    ref_attention,
    rel_err,
    torch_sdpa,
)


# ---------------------------------------------------------------------------------------------
# strided / non-contiguous inputs give the same answer
# ---------------------------------------------------------------------------------------------
def _same(a, b, what):
    # CPU matmuls may block differently for other strides: allow a few fp32 ulps, nothing more.
    assert a.shape == b.shape, what
    assert torch.isfinite(a).all(), what
    torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6, msg=what)


@pytest.mark.parametrize("causal", [False, True])
def test_transposed_views_BLHD(causal):
    B, L, S, H, D = 2, 37, 41, 3, 16
    qb, kb, vb = randn(B, L, H, D, scale=2), randn(B, S, H, D, scale=2), randn(B, S, H, D)
    q, k, v = (t.transpose(1, 2) for t in (qb, kb, vb))  # (B, H, L, D) views, strides (LHD, D, HD, 1)
    assert not q.is_contiguous()
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=causal)
    out_c = flashmin_nn.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), is_causal=causal)
    _same(out, out_c, "transposed views")
    ref, _, dead = ref_attention(q, k, v, causal_offset=0 if causal else None)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0 if causal else None))


def test_fused_qkv_projection_slices():
    # GPT-2 style: one projection (B, L, 3*H*D), viewed (B, L, 3, H, D), sliced, transposed
    B, L, H, D = 2, 29, 4, 16
    C = H * D
    x = randn(B, L, C)
    W = randn(C, 3 * C, scale=C ** -0.5)
    qkv = (x @ W).view(B, L, 3, H, D)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, L, D), row stride 3*C
    assert q.stride() == (L * 3 * C, D, 3 * C, 1)
    for causal in (False, True):
        out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out_c = flashmin_nn.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), is_causal=causal)
        _same(out, out_c, f"fused qkv causal={causal}")
        ref, _, dead = ref_attention(q, k, v, causal_offset=0 if causal else None)
        assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0 if causal else None))
    # the flash layout: q, k, v as (B, L, H, D) slices of the same buffer
    qf, kf, vf = (qkv[:, :, i] for i in range(3))
    fo = flashmin_nn.flash_attn_func(qf, kf, vf, causal=True)
    fo_c = flashmin_nn.flash_attn_func(qf.contiguous(), kf.contiguous(), vf.contiguous(), causal=True)
    _same(fo, fo_c, "fused qkv flash layout")


def test_other_strides():
    B, H, L, S, D = 2, 3, 19, 23, 16
    # batch broadcast by expand (stride 0), key/value every other row, heads sliced
    q1 = randn(1, H, L, D).expand(B, H, L, D)
    kbig, vbig = randn(B, H + 2, 2 * S, D), randn(B, H + 2, 2 * S, D)
    k, v = kbig[:, 1:H + 1, ::2], vbig[:, 2:H + 2, 1::2]
    out = flashmin_nn.scaled_dot_product_attention(q1, k, v)
    out_c = flashmin_nn.scaled_dot_product_attention(q1.contiguous(), k.contiguous(), v.contiguous())
    _same(out, out_c, "expanded / sliced")
    # head dim a slice of a wider last dim (row stride larger than D, unaligned start)
    wide = randn(B, H, L, D + 5)
    q2 = wide[..., 3:D + 3]
    out2 = flashmin_nn.scaled_dot_product_attention(q2, k, v)
    _same(out2, flashmin_nn.scaled_dot_product_attention(q2.contiguous(), k, v), "sliced head dim")


def test_noncontiguous_last_dim_works_or_says_so():
    # the docs promise any strides with a contiguous last dim; a strided last dim must either
    # work or be refused with a message about it, never give a wrong answer
    q, k, v = make_qkv(1, 2, 9, 11, 16)
    qt = q.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, last-dim stride 9
    assert qt.stride(-1) != 1
    try:
        out = flashmin_nn.scaled_dot_product_attention(qt, k, v)
    except ERROR_TYPES as e:
        assert "stride" in str(e) or "contiguous" in str(e), str(e)
        return
    _same(out, flashmin_nn.scaled_dot_product_attention(q, k, v), "strided last dim")


# ---------------------------------------------------------------------------------------------
# empty shapes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("B,L,S", [(0, 5, 7), (2, 0, 7), (0, 0, 0), (2, 5, 0)])
def test_empty(B, L, S):
    H, D = 3, 16
    q, k, v = make_qkv(B, H, L, S, D)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert out.shape == (B, H, L, D) and out.dtype == q.dtype
    assert (out == 0).all()  # S = 0: nothing to attend to -> zeros; else empty
    out, lse = flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=S - L, return_lse=True)
    assert out.shape == (B, H, L, D) and lse.shape == (B, H, L)
    assert (out == 0).all() and torch.isneginf(lse).all()
    fo, flse = flashmin_nn.flash_attn_func(*(t.transpose(1, 2) for t in (q, k, v)), causal=True, return_lse=True)
    assert fo.shape == (B, L, H, D) and flse.shape == (B, H, L)
    assert (fo == 0).all() and torch.isneginf(flse).all()


def test_single_key():
    q, k, v = make_qkv(2, 3, 7, 1, 8)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, v.expand(2, 3, 7, 8), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# argument names copy torch / flash-attn
# ---------------------------------------------------------------------------------------------
def test_keyword_names():
    q, k, v = make_qkv(1, 4, 6, 8, 16, Hkv=2)
    m = torch.ones(6, 8, dtype=torch.bool)
    out = flashmin_nn.scaled_dot_product_attention(
        query=q, key=k, value=v, attn_mask=m, dropout_p=0.0, is_causal=False, scale=0.2, enable_gqa=True
    )
    ref, _, dead = ref_attention(q, k, v, scale=0.2)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, scale=0.2))
    qf, kf, vf = (t.transpose(1, 2) for t in (q, k, v))
    fo = flashmin_nn.flash_attn_func(qf, kf, vf, softmax_scale=0.2, causal=False, return_lse=False)
    assert rel_err(fo.transpose(1, 2), ref) < 1e-5
    a = flashmin_nn.attention(query=q, key=k, value=v, attn_mask=None, scale=0.2, is_causal=False,
                              causal_offset=0, return_lse=False)
    assert rel_err(a, ref) < 1e-5


# ---------------------------------------------------------------------------------------------
# nn.Module
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("is_causal,scale,gqa", [(False, None, False), (True, None, False), (True, 0.3, True)])
def test_module(is_causal, scale, gqa):
    mod = flashmin_nn.FlashAttention(is_causal=is_causal, scale=scale, enable_gqa=gqa)
    assert isinstance(mod, nn.Module)
    assert len(list(mod.parameters())) == 0 and len(mod.state_dict()) == 0
    q, k, v = make_qkv(2, 4, 13, 13, 16, Hkv=2 if gqa else 4, scale=2)
    out = mod(q, k, v)
    exp = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale, enable_gqa=gqa)
    assert torch.equal(out, exp)
    ref, _, dead = ref_attention(q, k, v, scale=scale, causal_offset=0 if is_causal else None)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, scale=scale, causal_offset=0 if is_causal else None))


def test_module_with_mask():
    mod = flashmin_nn.FlashAttention()
    q, k, v = make_qkv(2, 2, 9, 12, 16)
    m = random_bool_mask((2, 1, 1, 12))
    m[..., 0] = True
    out = mod(q, k, v, attn_mask=m)
    assert torch.equal(out, flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m))
    ref, _, dead = ref_attention(q, k, v, attn_mask=m)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=m))
    # a module inside a model, run under eval / inference_mode
    model = nn.Sequential(nn.Identity())
    model.attn = mod
    with torch.inference_mode():
        out2 = model.attn(q, k, v, attn_mask=m)
    assert torch.equal(out2, out)


# ---------------------------------------------------------------------------------------------
# autograd: forward works everywhere, backward says it is not supported
# ---------------------------------------------------------------------------------------------
def test_forward_with_requires_grad_no_grad_inference_mode():
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    exp = flashmin_nn.scaled_dot_product_attention(q, k, v)
    qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
    out = flashmin_nn.scaled_dot_product_attention(qg, kg, vg)
    assert torch.equal(out.detach(), exp)
    with torch.no_grad():
        assert torch.equal(flashmin_nn.scaled_dot_product_attention(qg, kg, vg), exp)
    with torch.inference_mode():
        assert torch.equal(flashmin_nn.scaled_dot_product_attention(q, k, v), exp)
        qi = q.clone()
        assert torch.equal(flashmin_nn.scaled_dot_product_attention(qi, k, v), exp)


def _backward_error_message(fn):
    with pytest.raises(NotImplementedError) as ei:
        fn().sum().backward()
    return str(ei.value)


@pytest.mark.parametrize("which", ["q", "k", "v", "all"])
def test_backward_raises(which):
    q, k, v = make_qkv(1, 2, 5, 6, 8)
    ts = {"q": q, "k": k, "v": v}
    for name in ("q", "k", "v") if which == "all" else (which,):
        ts[name] = ts[name].clone().requires_grad_()
    msg = _backward_error_message(lambda: flashmin_nn.scaled_dot_product_attention(ts["q"], ts["k"], ts["v"]))
    assert "forward-only" in msg or "forward only" in msg, msg
    assert "training" in msg or "scaled_dot_product_attention" in msg, msg


def test_backward_raises_all_entry_points():
    q, k, v = make_qkv(1, 2, 5, 6, 8)
    qg = q.clone().requires_grad_()
    for fn in (
        lambda: flashmin_nn.attention(qg, k, v),
        lambda: flashmin_nn.attention(qg, k, v, return_lse=True)[0],
        lambda: flashmin_nn.flash_attn_func(qg.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True),
        lambda: flashmin_nn.FlashAttention()(qg, k, v),
    ):
        msg = _backward_error_message(fn)
        assert "forward" in msg, msg


# ---------------------------------------------------------------------------------------------
# kernel selection
# ---------------------------------------------------------------------------------------------
def test_list_kernels():
    ks = flashmin_nn.list_kernels()
    assert isinstance(ks, dict)
    for name in ("reference", "minimal", "tensor_core", "decode"):
        assert name in ks, f"{name} missing from list_kernels(): {list(ks)}"
        info = ks[name]
        assert isinstance(info.available, bool)
        if not info.available:
            assert isinstance(info.reason, str) and info.reason, f"{name}: unavailable without a reason"
    assert ks["reference"].available
    if not torch.cuda.is_available():
        for name in ("minimal", "tensor_core", "decode"):
            assert not ks[name].available, f"{name} claims to be available without CUDA"


def test_choose_kernel_cpu():
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    assert flashmin_nn.choose_kernel(q, k, v) == "reference"
    assert flashmin_nn.choose_kernel(q, k, v, attn_mask=torch.ones(9, 9, dtype=torch.bool), is_causal=False) == "reference"
    assert flashmin_nn.choose_kernel(q[:, :, :1], k, v, is_causal=True) == "reference"
    assert flashmin_nn.choose_kernel(q.half(), k.half(), v.half()) == "reference"


def test_use_kernel_reference_and_auto():
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    base = flashmin_nn.scaled_dot_product_attention(q, k, v)
    with flashmin_nn.use_kernel("reference"):
        assert torch.equal(flashmin_nn.scaled_dot_product_attention(q, k, v), base)
    with flashmin_nn.use_kernel("auto"):
        assert torch.equal(flashmin_nn.scaled_dot_product_attention(q, k, v), base)


@pytest.mark.parametrize("name", ["minimal", "tensor_core", "decode"])
def test_forced_cuda_kernel_on_cpu_raises(name):
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    with flashmin_nn.use_kernel(name):
        expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), name, r"cpu|cuda|device|available",
                     types=(RuntimeError, ValueError))
    # the context restored "auto": the same call works again
    flashmin_nn.scaled_dot_product_attention(q, k, v)


def test_use_kernel_nesting_and_exceptions():
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    call = lambda: flashmin_nn.scaled_dot_product_attention(q, k, v)
    with flashmin_nn.use_kernel("minimal"):
        with flashmin_nn.use_kernel("reference"):
            call()  # inner choice wins
        with pytest.raises((RuntimeError, ValueError)):
            call()  # outer choice restored
    call()
    with pytest.raises(KeyError):
        with flashmin_nn.use_kernel("minimal"):
            raise KeyError("boom")
    call()  # restored after an exception


def test_use_kernel_unknown_name():
    with pytest.raises(ValueError, match="bogus"):
        with flashmin_nn.use_kernel("bogus"):
            pass


def test_tensor_core_refuses_fp32_clearly():
    q, k, v = make_qkv(1, 2, 9, 9, 16)
    with flashmin_nn.use_kernel("tensor_core"):
        with pytest.raises((RuntimeError, ValueError)) as ei:
            flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert "tensor_core" in str(ei.value)
