"""Drop-in fidelity with flash_attn 2.8: the same positional order, names and defaults for
flash_attn_func, flash_attn_with_kvcache and flash_attn_varlen_func; every documented parameter
accepted; a value flashmin does not implement raises NotImplementedError naming it; the return
values of return_attn_probs / return_softmax_lse as flash_attn gives them.

The expected signatures are written out here from flash_attn 2.8's flash_attn_interface.py, so a
reordered or renamed parameter fails the test. Numerics against the float64 reference of helpers.py.
"""
import inspect
import warnings

import pytest
import torch

import flashmin_nn

from helpers import (
    assert_attention_close,
    assert_lse_close,
    kvcache_expected,
    make_qkv,
    randn,
    record_op_as_if_cuda,
    ref_attention,
    torch_sdpa,
)

_ = inspect.Parameter.empty
FLASH_ATTN_FUNC = [
    ("q", _), ("k", _), ("v", _), ("dropout_p", 0.0), ("softmax_scale", None), ("causal", False),
    ("window_size", (-1, -1)), ("softcap", 0.0), ("alibi_slopes", None), ("deterministic", False),
    ("return_attn_probs", False),
]
FLASH_ATTN_WITH_KVCACHE = [
    ("q", _), ("k_cache", _), ("v_cache", _), ("k", None), ("v", None), ("rotary_cos", None), ("rotary_sin", None),
    ("cache_seqlens", None), ("cache_batch_idx", None), ("cache_leftpad", None), ("block_table", None),
    ("softmax_scale", None), ("causal", False), ("window_size", (-1, -1)), ("softcap", 0.0),
    ("rotary_interleaved", True), ("alibi_slopes", None), ("num_splits", 0), ("return_softmax_lse", False),
]
FLASH_ATTN_VARLEN_FUNC = [
    ("q", _), ("k", _), ("v", _), ("cu_seqlens_q", _), ("cu_seqlens_k", _), ("max_seqlen_q", _), ("max_seqlen_k", _),
    ("dropout_p", 0.0), ("softmax_scale", None), ("causal", False), ("window_size", (-1, -1)), ("softcap", 0.0),
    ("alibi_slopes", None), ("deterministic", False), ("return_attn_probs", False), ("block_table", None),
]
SIGNATURES = {
    "flash_attn_func": (FLASH_ATTN_FUNC, {"return_lse"}),
    "flash_attn_with_kvcache": (FLASH_ATTN_WITH_KVCACHE, {"return_lse", "check_lengths"}),
    "flash_attn_varlen_func": (FLASH_ATTN_VARLEN_FUNC, {"check_lengths"}),
}


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_signature_is_flash_attn_2_8(name):
    expected, extras = SIGNATURES[name]
    params = list(inspect.signature(getattr(flashmin_nn, name)).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert [(p.name, p.default) for p in positional] == expected, f"{name}{inspect.signature(getattr(flashmin_nn, name))}"
    others = [p for p in params if p not in positional]
    assert all(p.kind is p.KEYWORD_ONLY for p in others), [str(p) for p in others]
    assert {p.name for p in others} == extras   # flashmin's own options, keyword-only


def _blhd(B=2, Hq=4, Hkv=2, Sq=9, Sk=13, D=16, dtype=torch.float32):
    q, k, v = make_qkv(B, Hq, Sq, Sk, D, Hkv=Hkv, dtype=dtype, scale=1.5)   # (B, H, S, D)
    return q, k, v, tuple(t.transpose(1, 2) for t in (q, k, v))          # and (B, S, H, D) views


# ---------------------------------------------------------------------------------------------
# flash_attn_func
# ---------------------------------------------------------------------------------------------
def test_flash_attn_func_positional_dropout_is_not_the_scale():
    q, k, v, (qf, kf, vf) = _blhd()
    out = flashmin_nn.flash_attn_func(qf, kf, vf, 0.0, causal=True)       # dropout_p by position
    ref, _, dead = ref_attention(q, k, v, causal_offset=k.size(2) - q.size(2))
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=4))
    # every argument by position, in flash_attn's order
    out = flashmin_nn.flash_attn_func(qf, kf, vf, 0.0, 0.3, True, (-1, -1), 0.0, None, False, False)
    ref, _, dead = ref_attention(q, k, v, scale=0.3, causal_offset=4)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=torch_sdpa(q, k, v, scale=0.3, causal_offset=4))


def test_flash_attn_func_unimplemented_values_raise_not_implemented():
    _, _, _, (qf, kf, vf) = _blhd()
    with pytest.raises(NotImplementedError, match="dropout_p") as info:
        flashmin_nn.flash_attn_func(qf, kf, vf, dropout_p=0.1)
    assert "tensor(" not in str(info.value)


# flash_attn's options on a call a CUDA kernel serves (here: resolve() answering "prefill" for CPU
# tensors, and the op recorded, then run by the CPU path): they reach the op as its window_left,
# window_right, softcap and alibi_slopes, in flash_attn's reading (causal sets the right side to 0;
# the free side of a one-sided window is seqlen_k).
_OPTIONS = [
    (dict(window_size=(4, 0)), (4, 0, 0.0, False)),
    (dict(window_size=(2, 3), causal=False), (2, 3, 0.0, False)),
    (dict(window_size=(-1, 2)), (-1, 2, 0.0, False)),
    (dict(window_size=(5, -1)), (5, "Sk", 0.0, False)),
    (dict(softcap=30.0), (-1, -1, 30.0, False)),
    (dict(alibi_slopes="slopes"), (-1, -1, 0.0, True)),
]


def _with_slopes(kw, heads):
    return dict(alibi_slopes=torch.rand(heads, dtype=torch.float32)) if kw.get("alibi_slopes") == "slopes" else kw


def _check_options(args, want, Sk):
    assert args[8] == "prefill"
    left, right, cap, alibi = want
    assert args[9:12] == (left, Sk if right == "Sk" else right, cap), args[9:12]
    assert (args[12] is not None) == alibi and args[13] is None


@pytest.mark.parametrize("kw,want", _OPTIONS)
def test_flash_attn_func_options_reach_the_cuda_kernels(monkeypatch, kw, want):
    _, _, _, (qf, kf, vf) = _blhd()
    kw = _with_slopes(kw, 4)
    cpu = flashmin_nn.flash_attn_func(qf, kf, vf, **kw)
    seen = record_op_as_if_cuda(monkeypatch)
    out = flashmin_nn.flash_attn_func(qf, kf, vf, **kw)
    assert len(seen) == 1
    _check_options(seen[0], want, kf.shape[1])
    torch.testing.assert_close(out, cpu, rtol=0, atol=0)


def test_flash_attn_func_values_that_mean_the_default_are_accepted():
    q, k, v, (qf, kf, vf) = _blhd(Sq=7, Sk=11)
    base = flashmin_nn.flash_attn_func(qf, kf, vf)
    causal = flashmin_nn.flash_attn_func(qf, kf, vf, causal=True)
    same = [
        (dict(window_size=[-1, -1]), base),        # any sequence, any negative value: no window
        (dict(window_size=(-5, -2)), base),
        (dict(window_size=(11, 11)), base),        # a window as wide as the keys is no window (flash_attn clips it)
        (dict(softcap=0.0), base),
        (dict(softcap=-1.0), base),                # flash_attn: only softcap > 0 activates it
        (dict(deterministic=True), base),          # the forward is deterministic; it only concerns backward
        (dict(window_size=(-1, 0)), causal),       # flash_attn reads (-1, 0) as causal
        (dict(window_size=(-1, 0), causal=True), causal),
        (dict(window_size=(-1, 5), causal=True), causal),   # causal overrides the right window
        (dict(window_size=(20, -1), causal=True), causal),
    ]
    for kw, exp in same:
        got = flashmin_nn.flash_attn_func(qf, kf, vf, **kw)
        assert torch.equal(got, exp), kw


def test_flash_attn_func_return_attn_probs():
    q, k, v, (qf, kf, vf) = _blhd()
    res = flashmin_nn.flash_attn_func(qf, kf, vf, causal=True, return_attn_probs=True)
    assert isinstance(res, tuple) and len(res) == 3
    out, lse, s_dmask = res
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=4)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=4))
    assert lse.shape == (2, 4, 9) and lse.dtype == torch.float32
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)
    # flash_attn 2.8 with dropout_p == 0 returns an empty tensor here: no probabilities are formed
    assert isinstance(s_dmask, torch.Tensor) and s_dmask.shape == (0,) and s_dmask.dtype == q.dtype
    # flashmin's own keyword-only option still works, and gives (out, lse)
    o2, l2 = flashmin_nn.flash_attn_func(qf, kf, vf, causal=True, return_lse=True)
    assert torch.equal(o2, out) and torch.equal(l2, lse)


def test_flash_attn_func_bad_argument_types_are_named():
    _, _, _, (qf, kf, vf) = _blhd()
    for kw, pat in ((dict(window_size=3), "window_size"), (dict(window_size=(1, 2, 3)), "window_size"),
                    (dict(window_size=(1.5, 0)), "window_size"), (dict(causal="yes"), "causal"),
                    (dict(softcap="big"), "softcap"), (dict(softcap=float("nan")), "softcap"),
                    (dict(dropout_p=None), "dropout_p"), (dict(softmax_scale=float("nan")), "softmax_scale")):
        with pytest.raises((TypeError, ValueError), match=pat):
            flashmin_nn.flash_attn_func(qf, kf, vf, **kw)


# ---------------------------------------------------------------------------------------------
# flash_attn_with_kvcache
# ---------------------------------------------------------------------------------------------
def _kv_case(B=3, Lq=2, Hq=4, Hkv=2, D=16, S_max=24, Lnew=2):
    q = randn(B, Lq, Hq, D, scale=1.5)                 # (B, Lq, Hq, D)
    kc, vc = randn(B, S_max, Hkv, D), randn(B, S_max, Hkv, D)
    kn, vn = randn(B, Lnew, Hkv, D), randn(B, Lnew, Hkv, D)
    return q, kc, vc, kn, vn


def test_kvcache_positional_order():
    q, kc, vc, kn, vn = _kv_case()
    lens = [5, 0, 20]
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, lens, scale=0.3, causal=True)
    # q, k_cache, v_cache, k, v, rotary_cos, rotary_sin, cache_seqlens, cache_batch_idx, cache_leftpad,
    # block_table, softmax_scale, causal, window_size, softcap, rotary_interleaved, alibi_slopes, num_splits,
    # return_softmax_lse
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, None, None, torch.tensor(lens, dtype=torch.int32),
                                                   None, None, None, 0.3, True, (-1, -1), 0.0, True, None, 0, True)
    assert torch.equal(kc, ekc) and torch.equal(vc, evc)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32)
    assert lse.shape == (3, 4, 2) and lse.dtype == torch.float32
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)


def test_kvcache_return_softmax_lse():
    q, kc, vc, _, _ = _kv_case()
    res = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=7, causal=True, return_softmax_lse=True)
    assert isinstance(res, tuple) and len(res) == 2
    out, lse = res
    _, _, ref, ref_lse, dead = kvcache_expected(q, kc, vc, None, None, [7, 7, 7], causal=True)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32)
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)
    o2, l2 = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=7, causal=True, return_lse=True)
    assert torch.equal(o2, out) and torch.equal(l2, lse)


def _kv_unimplemented(q, kc):
    return [
        (dict(num_splits=2), "num_splits"),
    ]


@pytest.mark.parametrize("kw,want", _OPTIONS)
def test_kvcache_options_reach_the_cuda_kernels(monkeypatch, kw, want):
    q, kc, vc, kn, vn = _kv_case()
    kw = _with_slopes(kw, 4)
    kc_cpu, vc_cpu = kc.clone(), vc.clone()
    cpu = flashmin_nn.flash_attn_with_kvcache(q, kc_cpu, vc_cpu, kn, vn, cache_seqlens=3, **kw)
    seen = record_op_as_if_cuda(monkeypatch)
    out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=3, **kw)
    assert len(seen) == 1
    _check_options(seen[0], want, kc.shape[1])
    torch.testing.assert_close(out, cpu, rtol=0, atol=0)
    assert torch.equal(kc, kc_cpu) and torch.equal(vc, vc_cpu)


def test_kvcache_unimplemented_values_raise_not_implemented_and_leave_the_cache():
    q, kc, vc, kn, vn = _kv_case()
    before = kc.clone(), vc.clone()
    for kw, name in _kv_unimplemented(q, kc):
        with pytest.raises(NotImplementedError, match=name) as info:
            flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=3, **kw)
        assert "tensor(" not in str(info.value), str(info.value)
        assert torch.equal(kc, before[0]) and torch.equal(vc, before[1]), f"{name}: cache written before the error"


def test_kvcache_values_that_mean_the_default_are_accepted():
    q, kc, vc, _, _ = _kv_case()
    base = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=9)
    causal = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=9, causal=True)
    for kw, exp in ((dict(rotary_interleaved=False), base),     # only matters with rotary_cos/sin
                    (dict(num_splits=0), base), (dict(softcap=0.0), base), (dict(window_size=[-1, -1]), base),
                    (dict(window_size=(-1, 0)), causal), (dict(window_size=(-1, 3), causal=True), causal)):
        assert torch.equal(flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=9, **kw), exp), kw


def test_kvcache_with_new_keys_refuses_a_cache_it_would_have_to_copy():
    # the new keys are written into the caches in place: a copy (for a strided last dim) would lose them
    q, kc, vc, kn, vn = _kv_case()
    kc_strided = kc.transpose(-1, -2).contiguous().transpose(-1, -2)      # same values, stride(-1) != 1
    with pytest.raises(ValueError, match=r"k_cache\.stride\(-1\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")                                    # the one-time copy warning
        flashmin_nn.flash_attn_with_kvcache(q, kc_strided, vc, kn, vn, cache_seqlens=3)


# ---------------------------------------------------------------------------------------------
# flash_attn_varlen_func: packed sequences, one op call over a padded view
# ---------------------------------------------------------------------------------------------
def _varlen_case(lens_q, lens_k, Hq=4, Hkv=2, D=16, dtype=torch.float32):
    q = randn(sum(lens_q), Hq, D, dtype=dtype, scale=1.5)     # (total_q, Hq, D)
    k = randn(sum(lens_k), Hkv, D, dtype=dtype, scale=1.5)    # (total_k, Hkv, D)
    v = randn(sum(lens_k), Hkv, D, dtype=dtype)
    cu = lambda ls: torch.tensor([0] + torch.tensor(ls).cumsum(0).tolist(), dtype=torch.int32)
    return q, k, v, cu(lens_q), cu(lens_k)


def _varlen_expected(q, k, v, lens_q, lens_k, scale, causal):
    """Per sequence, from the float64 reference: out (total_q, H, D), lse (H, total_q), dead (total_q, H)."""
    outs, lses, deads = [], [], []
    iq = ik = 0
    for lq, lk in zip(lens_q, lens_k):
        qs = q[iq:iq + lq].transpose(0, 1)[None]            # (1, H, lq, D)
        ks, vs = (t[ik:ik + lk].transpose(0, 1)[None] for t in (k, v))
        o, l, d = ref_attention(qs, ks, vs, scale=scale, causal_offset=(lk - lq) if causal else None)
        outs.append(o[0].transpose(0, 1)), lses.append(l[0]), deads.append(d[0].transpose(0, 1))
        iq, ik = iq + lq, ik + lk
    return torch.cat(outs), torch.cat(lses, dim=1), torch.cat(deads)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_varlen_matches_per_sequence_reference(dtype, causal):
    lens_q, lens_k = [5, 1, 0, 12, 3], [9, 1, 4, 12, 2]       # Lq > Lk in the last: first queries see nothing
    q, k, v, cq, ck = _varlen_case(lens_q, lens_k, dtype=dtype)
    out, lse, s_dmask = flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lens_q), max(lens_k), causal=causal,
                                                           return_attn_probs=True)
    assert out.shape == q.shape and out.dtype == dtype and out.is_contiguous()
    assert lse.shape == (4, sum(lens_q)) and lse.dtype == torch.float32
    assert s_dmask.shape == (0,)
    ref, ref_lse, dead = _varlen_expected(q, k, v, lens_q, lens_k, None, causal)
    rows = lambda t: t.permute(1, 0, 2)[None]                   # (total, H, D) -> (1, H, total, D)
    assert_attention_close(rows(out), rows(ref), dead.T[None], torch_out=None, dtype=dtype)
    assert_lse_close(lse[None], ref_lse[None], dead.T[None], dtype=dtype)
    plain = flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lens_q), max(lens_k), 0.0, None, causal)
    assert torch.equal(plain, out)


def test_varlen_refuses_what_it_cannot_do():
    q, k, v, cq, ck = _varlen_case([3, 4], [3, 4])
    f = flashmin_nn.flash_attn_varlen_func
    for kw, name in ((dict(block_table=torch.zeros(2, 1, dtype=torch.int32)), "block_table"),
                     (dict(dropout_p=0.5), "dropout_p")):
        with pytest.raises(NotImplementedError, match=name):
            f(q, k, v, cq, ck, 4, 4, **kw)
    bad = [
        (lambda: f(q, k, v, cq.long(), ck, 4, 4), r"cu_seqlens_q.*int32"),
        (lambda: f(q, k, v, cq, ck[:2], 4, 4), r"cu_seqlens_k.*\(2,\)"),
        (lambda: f(q, k, v, cq, ck, 3, 4), r"max_seqlen_q=3"),             # a sequence has 4 queries
        (lambda: f(q, k, v, cq, torch.tensor([0, 3, 9], dtype=torch.int32), 4, 6), r"cu_seqlens_k"),  # past total_k
        (lambda: f(q[None], k, v, cq, ck, 4, 4), r"\bq\b.*3"),
        (lambda: f(q, k, v, cq, ck, 4.0, 4), r"max_seqlen_q"),
        (lambda: f(q, k, v, cq, ck, 4, 4, alibi_slopes=torch.rand(4, dtype=torch.float64)), r"alibi_slopes.*float32"),
        (lambda: f(q, k, v, cq, ck, 4, 4, alibi_slopes=torch.rand(3)), r"alibi_slopes.*\(4,\)"),
        (lambda: f(q, k, v, cq, ck, 4, 4, softcap=float("nan")), r"softcap=nan"),
    ]
    for call, pat in bad:
        with pytest.raises((ValueError, TypeError), match=pat):
            call()


# ---------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU): the same entry points through the CUDA kernels
# ---------------------------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("causal", [False, True])
def test_varlen_cuda(causal):
    lens_q, lens_k = [5, 1, 0, 40, 3], [9, 1, 4, 40, 2]
    q, k, v, cq, ck = _varlen_case(lens_q, lens_k, D=64, dtype=torch.float16)
    out, lse, _ = flashmin_nn.flash_attn_varlen_func(q.cuda(), k.cuda(), v.cuda(), cq.cuda(), ck.cuda(), 40, 40,
                                                     causal=causal, return_attn_probs=True)
    ref, ref_lse, dead = _varlen_expected(q, k, v, lens_q, lens_k, None, causal)
    rows = lambda t: t.permute(1, 0, 2)[None]
    assert_attention_close(rows(out.cpu()), rows(ref), dead.T[None], torch_out=None, dtype=torch.float16)
    assert_lse_close(lse.cpu()[None], ref_lse[None], dead.T[None], dtype=torch.float16)


@needs_cuda
def test_flash_attn_func_return_attn_probs_cuda():
    q, k, v, (qf, kf, vf) = _blhd(Sq=33, Sk=70, D=64, dtype=torch.float16)
    out, lse, s_dmask = flashmin_nn.flash_attn_func(qf.cuda(), kf.cuda(), vf.cuda(), 0.0, causal=True,
                                                    return_attn_probs=True)
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=70 - 33)
    assert_attention_close(out.transpose(1, 2).cpu(), ref, dead, torch_out=None, dtype=torch.float16)
    assert_lse_close(lse.cpu(), ref_lse, dead, dtype=torch.float16)
    assert s_dmask.shape == (0,) and s_dmask.is_cuda


@needs_cuda
@pytest.mark.parametrize("entry", ["flash_attn_func", "kvcache"])
def test_one_graph_over_key_lengths_cuda(entry):
    # the op's SymInt causal_offset reaches the C++ kernel (registered with int64_t) as an int
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    if entry == "flash_attn_func":
        f = lambda q, k, v: flashmin_nn.flash_attn_func(q, k, v, causal=True)
    else:
        f = lambda q, k, v: flashmin_nn.flash_attn_with_kvcache(q, k, v, cache_seqlens=k.shape[1] - 1, causal=True)
    cf = torch.compile(f, fullgraph=True, dynamic=True, backend="aot_eager")
    Lq = 3 if entry == "flash_attn_func" else 1
    for S in range(70, 90):
        q = torch.randn(2, Lq, 8, 64, device="cuda", dtype=torch.float16)
        k = torch.randn(2, S, 2, 64, device="cuda", dtype=torch.float16)
        v = torch.randn(2, S, 2, 64, device="cuda", dtype=torch.float16)
        torch.testing.assert_close(cf(q, k, v), f(q, k, v), rtol=2e-3, atol=2e-3)
    assert counters["stats"]["unique_graphs"] <= 2
    torch._dynamo.reset()
