"""flash_attn_with_kvcache's cache_batch_idx and cache_leftpad on CUDA, read in place by every
CUDA kernel (no gathered copy): q row b reads cache row cache_batch_idx[b], from key
cache_leftpad[b] up to cache_seqlens[b] + Lnew, the new keys written at cache_seqlens[b] .. of that
cache row.

Expected: per q row, the float64 reference of tests/helpers.py over the slice of its cache row it
may see (bottom-right causal within the slice; flash_attn keeps positions absolute, and the
diagonal, the window and ALiBi are all relative to the row's last key, so the slice gives the same
answer). The cache slots before each row's start, past its keys, and every cache row no q row
chooses hold NaN: a kernel that reads any of them fails. The cache after the call must equal the
expected write, NaN where NaN.
"""
import pytest
import torch

import flashmin_nn
from flashmin_nn import backends, ops
from helpers import assert_attention_close, assert_lse_close, ref_attention

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

f = flashmin_nn.flash_attn_with_kvcache


def _kernels():
    names = [k for k in ("decode", "prefill", "prefill_sm90", "minimal") if k in backends.KERNEL_NAMES]
    return ["auto", *names]


def _same(a, b):
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))


def _run(kind, kernel, Lq, n_new, causal, D, dtype=torch.float16, S=300, Hkv=2, group=4):
    B, Bc = 3, 5
    idx = torch.tensor([4, 0, 2], dtype=torch.int32, device="cuda") if "idx" in kind else None
    rows = idx.tolist() if idx is not None else [0, 1, 2]
    seqlens = [S - n_new, 150, 1]
    starts = [0, 20, 0] if "leftpad" in kind else [0, 0, 0]
    if idx is None:
        Bc = B
    kc = torch.full((Bc, S, Hkv, D), float("nan"), device="cuda", dtype=dtype)
    vc = torch.full_like(kc, float("nan"))
    for r, s0, p0 in zip(rows, seqlens, starts):   # only what row r may read is a number
        kc[r, p0:s0] = torch.randn(s0 - p0, Hkv, D, device="cuda", dtype=dtype) * 2
        vc[r, p0:s0] = torch.randn(s0 - p0, Hkv, D, device="cuda", dtype=dtype)
    q = torch.randn(B, Lq, Hkv * group, D, device="cuda", dtype=dtype) * 2
    kn = vn = None
    if n_new:
        kn = torch.randn(B, n_new, Hkv, D, device="cuda", dtype=dtype) * 2
        vn = torch.randn(B, n_new, Hkv, D, device="cuda", dtype=dtype)
    exp_k, exp_v = kc.clone(), vc.clone()
    for b, (r, s0) in enumerate(zip(rows, seqlens)):
        if n_new:
            exp_k[r, s0:s0 + n_new], exp_v[r, s0:s0 + n_new] = kn[b], vn[b]
    lens = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    kw = dict(cache_seqlens=lens, causal=causal, return_lse=True)
    if idx is not None:
        kw["cache_batch_idx"] = idx
    if "leftpad" in kind:
        kw["cache_leftpad"] = torch.tensor(starts, dtype=torch.int32, device="cuda")
    with flashmin_nn.use_kernel(kernel):
        out, lse = f(q, kc, vc, kn, vn, **kw)
    what = f"{kind} {kernel} Lq={Lq} new={n_new} causal={causal} D={D}"
    assert _same(kc, exp_k) and _same(vc, exp_v), f"{what}: the cache differs from the expected write"
    for b, (r, s0, p0) in enumerate(zip(rows, seqlens, starts)):
        n = s0 + n_new - p0
        qb = q[b:b + 1].transpose(1, 2)
        kb = exp_k[r:r + 1, p0:s0 + n_new].transpose(1, 2)
        vb = exp_v[r:r + 1, p0:s0 + n_new].transpose(1, 2)
        ref, ref_lse, dead = ref_attention(qb, kb, vb, causal_offset=n - Lq if causal else None)
        assert_attention_close(out[b:b + 1].transpose(1, 2), ref, dead, torch_out=None, dtype=dtype, what=f"{what} row {b}")
        assert_lse_close(lse[b:b + 1], ref_lse, dead, dtype=dtype, what=f"{what} row {b}")


@pytest.mark.parametrize("kernel", _kernels())
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Lq,n_new", [(1, 0), (1, 1), (7, 7), (40, 0), (40, 40)])
@pytest.mark.parametrize("kind", ["idx", "leftpad", "idx+leftpad"])
def test_cache_rows_read_in_place(kind, Lq, n_new, causal, D, kernel):
    if kernel != "auto":
        probe = torch.empty(1, 4 * 2, Lq, D, device="cuda", dtype=torch.float16)
        kv = torch.empty(1, 2, 300, D, device="cuda", dtype=torch.float16)
        if backends.rejection(kernel, probe, kv, kv) is not None:
            pytest.skip(f"{kernel} does not serve Lq={Lq} D={D}")
    _run(kind, kernel, Lq, n_new, causal, D)


def test_cache_rows_bf16_long_cache_split_decode():
    """A long cache (the decode kernel's split plan) with cache_batch_idx and cache_leftpad, bf16."""
    _run("idx+leftpad", "auto", 1, 1, True, 128, dtype=torch.bfloat16, S=40000)


def test_cache_rows_call_the_op_once_on_the_callers_cache(monkeypatch):
    """No gathered copy: one op call on k_cache itself, with the indices and the starts."""
    calls = []
    real = ops._forward

    def spy(q, k, v, *args, **kw):
        calls.append((k.data_ptr(), args[-1][10] is not None, args[-1][11] is not None))
        return real(q, k, v, *args, **kw)

    monkeypatch.setattr(ops, "_forward", spy)
    q = torch.randn(2, 1, 4, 64, device="cuda", dtype=torch.float16)
    kc = torch.randn(3, 50, 2, 64, device="cuda", dtype=torch.float16)
    vc = torch.randn_like(kc)
    f(q, kc, vc, cache_seqlens=torch.tensor([10, 40], dtype=torch.int32, device="cuda"),
      cache_batch_idx=torch.tensor([2, 0], dtype=torch.int32, device="cuda"),
      cache_leftpad=torch.tensor([3, 0], dtype=torch.int32, device="cuda"))
    assert calls == [(kc.data_ptr(), True, True)], calls


def test_cache_rows_bad_values_are_named():
    q = torch.randn(2, 1, 4, 64, device="cuda", dtype=torch.float16)
    kc = torch.randn(3, 50, 2, 64, device="cuda", dtype=torch.float16)
    lens = torch.tensor([10, 40], dtype=torch.int32, device="cuda")
    with pytest.raises(ValueError, match=r"cache_batch_idx must lie in \[0, 3\)"):
        f(q, kc, kc, cache_seqlens=lens, cache_batch_idx=torch.tensor([3, 0], dtype=torch.int32, device="cuda"))
    with pytest.raises(ValueError, match=r"cache_leftpad\[1\]=41"):
        f(q, kc, kc, cache_seqlens=lens, cache_leftpad=torch.tensor([0, 41], dtype=torch.int32, device="cuda"))
    kn = torch.randn(2, 1, 2, 64, device="cuda", dtype=torch.float16)
    with pytest.raises(ValueError, match=r"repeats a cache row"):
        f(q, kc, kc.clone(), kn, kn, cache_seqlens=lens, cache_batch_idx=torch.tensor([1, 1], dtype=torch.int32, device="cuda"))
