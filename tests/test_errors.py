"""Argument checks: every bad call raises a clear error that names the tensor and the value."""
import re

import pytest
import torch
import torch.nn.functional as F

import flashmin_nn

from helpers import ERROR_TYPES, K, MASK, Q, V, expect_error, make_qkv, op_args, randn

sdpa = flashmin_nn.scaled_dot_product_attention


def qkv(B=2, H=4, L=8, S=10, D=16, **kw):
    return make_qkv(B, H, L, S, D, **kw)


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_dtype(which, dtype):
    ts = dict(zip("qkv", qkv()))
    ts[which] = (ts[which] * 10).to(dtype)
    name = {"q": Q, "k": K, "v": V}[which]
    dname = str(dtype).replace("torch.", "")
    expect_error(lambda: sdpa(ts["q"], ts["k"], ts["v"]), name, dname, types=(TypeError, ValueError))


@pytest.mark.parametrize("which,dtype", [("k", torch.float16), ("v", torch.bfloat16), ("k", torch.float64)])
def test_dtype_mismatch(which, dtype):
    ts = dict(zip("qkv", qkv()))
    ts[which] = ts[which].to(dtype)
    name = {"k": K, "v": V}[which]
    dname = str(dtype).replace("torch.", "")
    alt = {"float16": "float16|half", "bfloat16": "bfloat16", "float64": "float64|double"}[dname]
    expect_error(lambda: sdpa(ts["q"], ts["k"], ts["v"]), name, alt, types=(TypeError, ValueError))


def test_flash_attn_func_int_dtype():
    q, k, v = (t.transpose(1, 2) for t in qkv())
    expect_error(lambda: flashmin_nn.flash_attn_func(q.to(torch.int16), k, v), Q, "int16", types=(TypeError, ValueError))


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("rank", [3, 5])
def test_rank(which, rank):
    ts = dict(zip("qkv", qkv()))
    t = ts[which]
    ts[which] = t[0] if rank == 3 else t.unsqueeze(0)
    name = {"q": Q, "k": K, "v": V}[which]
    expect_error(lambda: sdpa(ts["q"], ts["k"], ts["v"]), name, rf"\b{rank}\b|{rank}-?d", types=(ValueError,))


def test_rank_flash_attn_func():
    q, k, v = (t.transpose(1, 2) for t in qkv())
    expect_error(lambda: flashmin_nn.flash_attn_func(q[0], k, v), Q, r"\b3\b|3-?d", types=(ValueError,))


def test_batch_mismatch():
    q, _, _ = qkv(B=2)
    _, k, v = qkv(B=3)
    expect_error(lambda: sdpa(q, k, v), K, r"\b3\b", r"\b2\b", types=(ValueError,))


def test_heads_mismatch_without_gqa():
    q, k, v = qkv(H=4)
    k2, v2 = k[:, :2], v[:, :2]
    expect_error(lambda: sdpa(q, k2, v2), r"\b2\b", r"\b4\b", types=(ValueError, RuntimeError))
    # torch raises too: flashmin keeps torch's meaning (enable_gqa=False means equal head counts)
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, k2, v2)


def test_heads_not_divisible_for_gqa():
    q, k, v = qkv(H=6)
    k4, v4 = k[:, :4], v[:, :4]
    expect_error(lambda: sdpa(q, k4, v4, enable_gqa=True), r"\b6\b", r"\b4\b", types=(ValueError,))
    qf, kf, vf = q.transpose(1, 2), k4.transpose(1, 2), v4.transpose(1, 2)
    expect_error(lambda: flashmin_nn.flash_attn_func(qf, kf, vf), r"\b6\b", r"\b4\b", types=(ValueError,))


def test_kv_heads_differ():
    q, k, v = qkv(H=4)
    expect_error(lambda: sdpa(q, k, v[:, :2], enable_gqa=True), V, r"\b2\b", types=(ValueError,))


def test_head_dim_mismatch():
    q, _, v = qkv(D=64)
    k = randn(2, 4, 10, 96)
    expect_error(lambda: sdpa(q, k, v), K, r"\b96\b", r"\b64\b", types=(ValueError,))


def test_kv_length_mismatch():
    q, k, v = qkv(S=10)
    expect_error(lambda: sdpa(q, k, v[:, :, :7]), V, r"\b7\b", r"\b10\b", types=(ValueError,))


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(9, 10), (8, 11), (3, 4, 8, 10), (2, 5, 8, 10), (11,), (2, 4, 8, 10, 1)])
def test_mask_does_not_broadcast(shape):
    q, k, v = qkv(B=2, H=4, L=8, S=10)
    m = torch.ones(shape, dtype=torch.bool)
    bad = [str(s) for s in shape if s not in (1, 2, 4, 8, 10)]
    pats = [MASK] + ([rf"\b{bad[0]}\b"] if bad else [])
    expect_error(lambda: sdpa(q, k, v, attn_mask=m), *pats, types=(ValueError, RuntimeError))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.int32])
def test_mask_int_dtype(dtype):
    q, k, v = qkv()
    m = torch.ones(8, 10, dtype=dtype)
    dname = str(dtype).replace("torch.", "")
    expect_error(lambda: sdpa(q, k, v, attn_mask=m), MASK, dname, types=(TypeError, ValueError))


def test_mask_and_is_causal_together():
    q, k, v = qkv()
    m = torch.ones(8, 10, dtype=torch.bool)
    # torch's math backend refuses this (its CPU flash path silently accepts it); flashmin refuses
    expect_error(lambda: sdpa(q, k, v, attn_mask=m, is_causal=True), MASK, "causal")


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_refused(p):
    q, k, v = qkv()
    expect_error(lambda: sdpa(q, k, v, dropout_p=p), "dropout", str(p), types=(ValueError,))


def test_dropout_zero_accepted():
    q, k, v = qkv()
    assert torch.equal(sdpa(q, k, v, dropout_p=0.0), sdpa(q, k, v))


def test_bad_kernel_name_in_op():
    q, k, v = qkv()
    with pytest.raises(ERROR_TYPES, match="bogus"):
        torch.ops.flashmin.attention_fwd(*op_args(q, k, v, kernel="bogus"))


# ---------------------------------------------------------------------------------------------
# inputs that used to slip through or fail unclearly
# ---------------------------------------------------------------------------------------------
def test_head_dim_zero():
    q = k = v = randn(1, 2, 4, 0)
    expect_error(lambda: sdpa(q, k, v), Q, r"head dim", r"\b0\b", types=(ValueError,))
    qf = q.transpose(1, 2)
    expect_error(lambda: flashmin_nn.flash_attn_func(qf, qf, qf), r"\bq\b", r"\b0\b", types=(ValueError,))


def test_zero_kv_heads_message():
    q = randn(1, 0, 4, 8)
    e = expect_error(lambda: sdpa(q, q, q), K, r"size\(1\)=0", r"at least one", types=(ValueError,))
    assert "multiple" not in str(e), str(e)


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_float8_refused_on_cpu(dtype):
    q = randn(1, 2, 4, 8).to(dtype)
    dname = str(dtype).replace("torch.", "")
    expect_error(lambda: sdpa(q, q, q), Q, dname, types=(TypeError,))


def _kv_inputs():
    return randn(2, 1, 4, 8), randn(2, 10, 2, 8), randn(2, 10, 2, 8)


def test_cache_seqlens_numpy_and_other_integers_accepted():
    np = pytest.importorskip("numpy")
    q, kc, vc = _kv_inputs()
    exp = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=3)
    for s in (np.int64(3), np.int32(3)):
        assert torch.equal(flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=s), exp), type(s)


def test_cache_seqlens_bool_refused():
    q, kc, vc = _kv_inputs()
    for s in (True, False):
        expect_error(lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=s), r"cache_seqlens",
                     r"bool", types=(TypeError,))


@pytest.mark.parametrize("value", ["yes", 1, None, torch.tensor(True)], ids=["str", "int", "None", "tensor"])
def test_causal_flags_must_be_bool(value):
    # torch's SDPA takes a Python bool only; so does flashmin, and the error names the flag and its value
    q, k, v = qkv()
    shown = repr(value) if isinstance(value, str) else type(value).__name__
    qf, kf, vf = (t.transpose(1, 2) for t in (q, k, v))
    for call, flag in ((lambda: sdpa(q, k, v, is_causal=value), "is_causal"),
                       (lambda: flashmin_nn.attention(q, k, v, is_causal=value), "is_causal"),
                       (lambda: flashmin_nn.flash_attn_func(qf, kf, vf, causal=value), "causal"),
                       (lambda: sdpa(q, k, v, enable_gqa=value), "enable_gqa")):
        expect_error(call, rf"\b{flag}\b", re.escape(shown), types=(TypeError,))


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -float("inf")])
def test_scale_must_be_finite(scale):
    q, k, v = qkv()
    expect_error(lambda: sdpa(q, k, v, scale=scale), r"\bscale\b", r"nan|inf", types=(ValueError,))
    expect_error(lambda: flashmin_nn.attention(q, k, v, scale=scale), r"\bscale\b", types=(ValueError,))
    qf, kf, vf = (t.transpose(1, 2) for t in (q, k, v))
    expect_error(lambda: flashmin_nn.flash_attn_func(qf, kf, vf, softmax_scale=scale), r"softmax_scale",
                 types=(ValueError,))


def test_scale_not_a_number_refused():
    q, k, v = qkv()
    expect_error(lambda: sdpa(q, k, v, scale="0.1"), r"\bscale\b", r"str", types=(TypeError,))


@pytest.mark.parametrize("entry", ["sdpa", "attention", "flash_attn_func", "kvcache", "module"])
def test_copy_warning_points_at_the_callers_line(entry, monkeypatch):
    import flashmin_nn._checks as checks

    monkeypatch.setattr(checks, "_warned_copy", False)
    q, k, v = qkv()
    qt = q.transpose(-1, -2).contiguous().transpose(-1, -2)        # last-dim stride != 1
    calls = {
        "sdpa": lambda: sdpa(qt, k, v),
        "attention": lambda: flashmin_nn.attention(qt, k, v),
        "flash_attn_func": lambda: flashmin_nn.flash_attn_func(qt.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)),
        "kvcache": lambda: flashmin_nn.flash_attn_with_kvcache(qt.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)),
        "module": lambda: flashmin_nn.FlashAttention()(qt, k, v),
    }
    with pytest.warns(UserWarning, match="stride") as record:
        calls[entry]()
    assert [w.filename for w in record] == [__file__], [(w.filename, w.lineno) for w in record]
