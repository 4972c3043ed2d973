"""The decode path: flash_attn_with_kvcache and the split-KV "decode" kernel.

Part 1 (CPU, runs everywhere, fast): flash_attn_with_kvcache on the reference path. Ragged
per-batch cache lengths (0 and full included), with and without new keys written into the cache,
causal on and off, GQA; the in-place write lands exactly at cache_seqlens[b] .. + Lnew and nothing
else in the cache changes; int / int32 / int64 / None lengths; lse; argument errors.

Part 2 (CUDA, skipped without a GPU): the same checks with the decode kernel forced
(use_kernel("decode")) and picked by "auto", over q_len x kv_len x GQA ratio x dtype x head dim,
up to 65536 keys (many splits), long caches on grids that fill the GPU (8 splits, both cache
layouts, so both split orders); masks and both causal alignments through the SDPA-style entry
points; kernel choice; determinism.

Expected results are built per batch row b from the cache sliced to that row's keys
(cache[b, :cache_seqlens[b] + Lnew]) with the independent float64 reference of tests/helpers.py,
which knows nothing of per-batch lengths: the ragged semantics are checked, not shared. Pass rule
(helpers.assert_attention_close): error against float64 at most ~2x torch SDPA's error in the same
dtype on the same rows (torch run per row on the same slices, causal as an explicit bottom-right
bool mask) plus a small slack; NaN never passes; rows that see no key are exactly 0 (lse -inf).

Cache positions past a row's keys hold garbage that would dominate the softmax if read (large
keys, values offset by 100), so a kernel that ignores the lengths fails loudly.
"""

import math

import pytest
import torch

import flashmin_nn
from flashmin_nn.reference import naive_attention

from helpers import (
    assert_attention_close,
    assert_lse_close,
    expect_error,
    key_padding_mask,
    make_qkv,
    randn,
    random_float_mask,
    ref_attention,
    torch_sdpa,
)

DT_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}
DEV = "cuda"          # the device of Part 2 (Part 1 is always CPU)


def _ids(v):
    return DT_IDS.get(v) if isinstance(v, torch.dtype) else None


def needs_cuda(f):
    f = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(f)
    return pytest.mark.cuda(f)


# ---------------------------------------------------------------------------------------------
# building a case and checking it (shared by the CPU and CUDA tests)
# ---------------------------------------------------------------------------------------------
def rnd(*shape, dtype, device, scale=1.0):
    """Fresh N(0, scale^2) values drawn on `device` in fp32, then cast (a 65536-key cache is
    slow to draw on the host). Seeded per test by conftest."""
    return (torch.randn(*shape, device=device) * scale).to(dtype)


def _fill_garbage(cache_k, cache_v, seqlens, kind):
    """Positions >= seqlens[b] of row b get values that must never be read: large keys (a leaked
    key dominates the softmax) and values offset by 100; or NaN (kind="nan")."""
    B, S_max = cache_k.shape[:2]
    for b in range(B):
        s = seqlens[b]
        if s >= S_max:
            continue
        if kind == "nan":
            cache_k[b, s:] = float("nan")
            cache_v[b, s:] = float("nan")
        else:
            n = S_max - s
            cache_k[b, s:] = rnd(n, *cache_k.shape[2:], dtype=cache_k.dtype, device=cache_k.device, scale=8.0)
            cache_v[b, s:] = rnd(n, *cache_v.shape[2:], dtype=cache_v.dtype, device=cache_v.device) + 100


def _same(a, b):
    """Bitwise-equal values, NaN where NaN."""
    return (a.shape == b.shape and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))


def _poison_allocator(specs, device):
    """Fill freed CUDA caching-allocator memory with NaN: blocks the sizes of the outputs (they get
    handed back to the next allocations of those sizes), then a spread of sizes for whatever
    workspace the kernel allocates (split-KV partial outputs and lse): an element the kernel forgets
    to write, or a split it forgets to initialise, reads NaN."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()                       # drop stale free blocks: what is cached next is NaN
    bufs = [torch.full(shape, float("nan") if dtype.is_floating_point else -1, dtype=dtype, device=device)
            for shape, dtype in specs]
    for nbytes in [1 << k for k in range(12, 21)] + [4 << 20, 16 << 20, 64 << 20]:   # 4 KiB .. 64 MiB
        for _ in range(2):
            bufs.append(torch.full((nbytes // 4,), float("nan"), dtype=torch.float32, device=device))
    torch.cuda.synchronize(device)
    del bufs


def run_poisoned(fn):
    """fn() with the allocator poisoned (CUDA; on CPU fn() runs once); the first output must be
    finite, lse never NaN. fn must be idempotent (a KV-cache write of the same values is)."""
    res = fn()
    ts = [res] if isinstance(res, torch.Tensor) else list(res)
    if ts[0].is_cuda:
        specs = [(tuple(t.shape), t.dtype) for t in ts]
        dev = ts[0].device
        del res, ts
        _poison_allocator(specs, dev)
        res = fn()
        ts = [res] if isinstance(res, torch.Tensor) else list(res)
    assert torch.isfinite(ts[0]).all(), f"output has {(~torch.isfinite(ts[0])).sum().item()} non-finite values"
    for t in ts[1:]:
        assert not torch.isnan(t).any(), "lse has NaN"
    return res


def expected_rows(q, k_cache, v_cache, totals, causal, scale=None, with_torch=True):
    """Per batch row b: attention of q[b] over the first totals[b] keys of the cache, float64.

    q (B, Lq, Hq, D), caches (B, S_max, Hkv, D). Returns, in (B, H, L, D) layout: ref (B, Hq, Lq, D)
    float64, ref_lse (B, Hq, Lq), dead (B, Hq, Lq), torch_out (B, Hq, Lq, D) in q's dtype or None.
    torch's causal is top-left, so the bottom-right alignment is given to it as a bool mask
    (helpers.torch_sdpa); a row torch cannot run (no keys) is NaN in torch_out (such rows are dead).
    """
    B, Lq, Hq, D = q.shape
    refs, lses, deads, touts = [], [], [], []
    for b in range(B):
        T = int(totals[b])
        qb = q[b:b + 1].transpose(1, 2)                     # (1, Hq, Lq, D)
        kb = k_cache[b:b + 1, :T].transpose(1, 2)           # (1, Hkv, T, D)
        vb = v_cache[b:b + 1, :T].transpose(1, 2)           # (1, Hkv, T, D)
        co = T - Lq if causal else None                     # bottom-right, per row
        r, l, d = ref_attention(qb, kb, vb, scale=scale, causal_offset=co)
        refs.append(r), lses.append(l), deads.append(d)
        if with_torch:
            t = torch_sdpa(qb, kb, vb, scale=scale, causal_offset=co) if T > 0 else None
            if t is None or t.shape != qb.shape:
                t = torch.full(qb.shape, float("nan"), dtype=q.dtype, device=q.device)
            touts.append(t)
    tout = torch.cat(touts) if with_torch else None
    return torch.cat(refs), torch.cat(lses), torch.cat(deads), tout


def check_kvcache(*, device, dtype, kernel, B, Hkv, group, D, Lq, seqlens, n_new, causal, S_max,
                  garbage="big", seqlens_dtype=torch.int32, scale=None, mag=2.0, cache_storage="bshd",
                  page=None, what=""):
    """Build a KV-cache decode case, run flash_attn_with_kvcache under use_kernel(kernel), check
    the output and lse against the per-row float64 reference and the cache against an independent
    copy with the new keys written in.

    seqlens: per-row cache_seqlens (keys already in the cache); row b attends to seqlens[b] + n_new
    keys. cache_storage "bhsd": the caches are (B, Hkv, S_max, D) tensors (Hugging Face layout)
    passed as (B, S_max, Hkv, D) views: the write must land in that storage. page=P: the same
    cache (S_max rounded up to whole pages) scattered in pages of P keys over a shuffled pool with
    spare pages of garbage, read through block_table; the pool after the call must equal the
    expected cache mapped back through the table, the spare pages untouched.
    """
    Hq = Hkv * group
    if page:
        S_max = -(-S_max // page) * page
    assert len(seqlens) == B and all(0 <= s <= S_max - n_new for s in seqlens)
    q = rnd(B, Lq, Hq, D, dtype=dtype, device=device, scale=mag)                 # (B, Lq, Hq, D)
    if cache_storage == "bhsd":
        k_store = rnd(B, Hkv, S_max, D, dtype=dtype, device=device, scale=mag)  # (B, Hkv, S_max, D)
        v_store = rnd(B, Hkv, S_max, D, dtype=dtype, device=device)
        k_cache, v_cache = k_store.transpose(1, 2), v_store.transpose(1, 2)      # (B, S_max, Hkv, D) views
    else:
        k_cache = rnd(B, S_max, Hkv, D, dtype=dtype, device=device, scale=mag)  # (B, S_max, Hkv, D)
        v_cache = rnd(B, S_max, Hkv, D, dtype=dtype, device=device)
    _fill_garbage(k_cache, v_cache, seqlens, garbage)
    k_new = v_new = None
    if n_new:
        k_new = rnd(B, n_new, Hkv, D, dtype=dtype, device=device, scale=mag)    # (B, Lnew, Hkv, D)
        v_new = rnd(B, n_new, Hkv, D, dtype=dtype, device=device)
    # the cache as it must be after the call, built independently of the implementation
    exp_k, exp_v = k_cache.clone(), v_cache.clone()
    for b, s in enumerate(seqlens):
        if n_new:
            exp_k[b, s:s + n_new] = k_new[b]
            exp_v[b, s:s + n_new] = v_new[b]
    totals = [s + n_new for s in seqlens]
    cache_seqlens = torch.tensor(seqlens, dtype=seqlens_dtype, device=device)
    ptrs = (k_cache.data_ptr(), v_cache.data_ptr())

    table = None
    if page:   # the pool: row b's j-th page at table[b, j], two spare pages of garbage never read
        M = S_max // page
        n_pages = B * M + 2
        table = torch.randperm(n_pages, device=device)[:B * M].view(B, M).to(torch.int32)
        pool_k = rnd(n_pages, page, Hkv, D, dtype=dtype, device=device, scale=8.0)
        pool_v = rnd(n_pages, page, Hkv, D, dtype=dtype, device=device) + 100
        pool_k[table.long()] = k_cache.view(B, M, page, Hkv, D)
        pool_v[table.long()] = v_cache.view(B, M, page, Hkv, D)
        exp_pool_k, exp_pool_v = pool_k.clone(), pool_v.clone()
        exp_pool_k[table.long()] = exp_k.view(B, M, page, Hkv, D)
        exp_pool_v[table.long()] = exp_v.view(B, M, page, Hkv, D)
        k_cache, v_cache, exp_k, exp_v = pool_k, pool_v, exp_pool_k, exp_pool_v
        ptrs = (k_cache.data_ptr(), v_cache.data_ptr())

    def fn():
        return flashmin_nn.flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=cache_seqlens,
                                                   block_table=table, softmax_scale=scale, causal=causal,
                                                   return_lse=True)

    with flashmin_nn.use_kernel(kernel):
        out, lse = run_poisoned(fn)
    what = what or (f"{kernel} {DT_IDS[dtype]} D={D} Lq={Lq} seqlens={seqlens} new={n_new} g={group} "
                    f"causal={causal}")
    # the cache: written in place, exactly where it should be, nothing else touched
    assert (k_cache.data_ptr(), v_cache.data_ptr()) == ptrs
    assert _same(k_cache, exp_k), f"{what}: k_cache differs from the expected in-place write"
    assert _same(v_cache, exp_v), f"{what}: v_cache differs from the expected in-place write"
    if cache_storage == "bhsd":
        assert _same(k_store.transpose(1, 2), exp_k) and _same(v_store.transpose(1, 2), exp_v)
    assert torch.equal(cache_seqlens, torch.tensor(seqlens, dtype=seqlens_dtype, device=device)), \
        f"{what}: cache_seqlens was modified"
    # the output
    assert out.shape == (B, Lq, Hq, D) and out.dtype == dtype and out.device == q.device, what
    assert lse.shape == (B, Hq, Lq) and lse.dtype == torch.float32, what
    if page:   # the expected cache back in (B, S_max, Hkv, D) rows for the reference
        exp_k = exp_k[table.long()].reshape(B, S_max, Hkv, D)
        exp_v = exp_v[table.long()].reshape(B, S_max, Hkv, D)
    ref, ref_lse, dead, tout = expected_rows(q, exp_k, exp_v, totals, causal, scale)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=tout, dtype=dtype, what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)
    return out, lse


# =============================================================================================
# Part 1: CPU
# =============================================================================================
CPU_S_MAX = 23


def _cpu_seqlens(B, n_new):
    """Ragged: empty, full (S_max - Lnew), the middle, one key."""
    full = CPU_S_MAX - n_new
    return [0, full, full // 2 + 1, 1][:B]


@pytest.mark.parametrize("n_new", ["none", "Lq", "3"])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Lq", [1, 2, 7])
def test_kvcache_cpu(Lq, causal, group, n_new):
    n = {"none": 0, "Lq": Lq, "3": 3}[n_new]
    check_kvcache(device="cpu", dtype=torch.float32, kernel="auto", B=4, Hkv=2, group=group, D=16, Lq=Lq,
                  seqlens=_cpu_seqlens(4, n), n_new=n, causal=causal, S_max=CPU_S_MAX,
                  seqlens_dtype=torch.int64 if group == 4 else torch.int32)


@pytest.mark.parametrize("page", [4, 16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Lq", [1, 7])
def test_kvcache_cpu_paged(Lq, causal, page):
    """The check of the paged grid (CUDA, below) on the reference path: pages over a shuffled pool."""
    check_kvcache(device="cpu", dtype=torch.float32, kernel="auto", B=4, Hkv=2, group=4, D=16, Lq=Lq,
                  seqlens=_cpu_seqlens(4, Lq), n_new=Lq, causal=causal, S_max=CPU_S_MAX, page=page)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=_ids)
def test_kvcache_cpu_dtypes(dtype):
    check_kvcache(device="cpu", dtype=dtype, kernel="auto", B=3, Hkv=2, group=4, D=32, Lq=2,
                  seqlens=[5, 0, 20], n_new=2, causal=True, S_max=CPU_S_MAX)


def test_kvcache_cpu_softmax_scale():
    check_kvcache(device="cpu", dtype=torch.float32, kernel="auto", B=3, Hkv=1, group=4, D=16, Lq=3,
                  seqlens=[4, 11, 0], n_new=3, causal=True, S_max=CPU_S_MAX, scale=0.37)


def test_kvcache_cpu_bhsd_cache_storage():
    # a (B, Hkv, S_max, D) cache (Hugging Face layout) passed as a (B, S_max, Hkv, D) view
    check_kvcache(device="cpu", dtype=torch.float32, kernel="auto", B=3, Hkv=2, group=2, D=16, Lq=2,
                  seqlens=[0, 9, 21], n_new=2, causal=True, S_max=CPU_S_MAX, cache_storage="bhsd")


def test_kvcache_cpu_matches_reference_seqlens_k():
    # flashmin's own float64 reference with seqlens_k agrees with the per-row slices
    B, Lq, Hq, Hkv, D, S_max = 3, 4, 4, 2, 16, 19
    q = randn(B, Lq, Hq, D, scale=2.0)
    kc, vc = randn(B, S_max, Hkv, D, scale=2.0), randn(B, S_max, Hkv, D)
    lens = torch.tensor([0, 2, 19], dtype=torch.int32)
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, causal=True, return_lse=True)
    r, rl = naive_attention(q.transpose(1, 2), kc.transpose(1, 2), vc.transpose(1, 2), is_causal=True,
                            causal_offset=S_max - Lq, return_lse=True, seqlens_k=lens)
    r2, rl2, dead, _ = expected_rows(q, kc, vc, lens.tolist(), True, with_torch=False)
    assert torch.allclose(r, r2, rtol=1e-12, atol=1e-12)
    assert torch.equal(torch.isneginf(rl), dead) and torch.allclose(rl[~dead], rl2[~dead], rtol=1e-12, atol=1e-12)
    assert_attention_close(out.transpose(1, 2), r, dead, torch_out=None, dtype=torch.float32)
    assert_lse_close(lse, rl, dead, dtype=torch.float32)


def _cpu_case(B=3, Lq=2, Hq=4, Hkv=2, D=16, S_max=CPU_S_MAX, Lnew=2, dtype=torch.float32):
    q = randn(B, Lq, Hq, D, dtype=dtype, scale=2.0)
    kc, vc = randn(B, S_max, Hkv, D, dtype=dtype, scale=2.0), randn(B, S_max, Hkv, D, dtype=dtype)
    kn, vn = randn(B, Lnew, Hkv, D, dtype=dtype, scale=2.0), randn(B, Lnew, Hkv, D, dtype=dtype)
    return q, kc, vc, kn, vn


@pytest.mark.parametrize("with_new", [False, True])
@pytest.mark.parametrize("s", [0, 7, CPU_S_MAX - 2])
def test_int_cache_seqlens_equals_tensor(s, with_new):
    q, kc, vc, kn, vn = _cpu_case()
    if not with_new:
        kn = vn = None
    kc2, vc2 = kc.clone(), vc.clone()
    o1, l1 = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=s, causal=True, return_lse=True)
    for dt in (torch.int32, torch.int64):
        kc3, vc3 = kc2.clone(), vc2.clone()
        o2, l2 = flashmin_nn.flash_attn_with_kvcache(q, kc3, vc3, kn, vn, cache_seqlens=torch.full((3,), s, dtype=dt),
                                                     causal=True, return_lse=True)
        assert torch.equal(o1, o2) and torch.equal(l1, l2), f"int {s} vs {dt} tensor"
        assert torch.equal(kc, kc3) and torch.equal(vc, vc3)
    n = 2 if with_new else 0
    ref, ref_lse, dead, tout = expected_rows(q, kc, vc, [s + n] * 3, True)
    assert_attention_close(o1.transpose(1, 2), ref, dead, torch_out=tout)
    assert_lse_close(l1, ref_lse, dead, dtype=torch.float32)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Lq", [1, 7])
def test_cache_seqlens_none_is_whole_cache(Lq, causal):
    q, kc, vc, _, _ = _cpu_case(Lq=Lq)
    before = kc.clone(), vc.clone()
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, causal=causal, return_lse=True)
    assert torch.equal(kc, before[0]) and torch.equal(vc, before[1])
    ref, ref_lse, dead, tout = expected_rows(q, kc, vc, [CPU_S_MAX] * 3, causal)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=tout)
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)
    o2, l2 = flashmin_nn.flash_attn_func(q, kc, vc, causal=causal, return_lse=True)
    assert torch.equal(out, o2) and torch.equal(lse, l2)


@pytest.mark.parametrize("causal", [False, True])
def test_empty_rows_zero_and_lse_neg_inf(causal):
    q, kc, vc, _, _ = _cpu_case(B=2, Lq=3)
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=0, causal=causal, return_lse=True)
    assert out.shape == (2, 3, 4, 16) and (out == 0).all()
    assert lse.shape == (2, 4, 3) and torch.isneginf(lse).all()
    # one empty row among non-empty ones
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.tensor([0, 5]), causal=causal,
                                                   return_lse=True)
    assert (out[0] == 0).all() and torch.isneginf(lse[0]).all()
    assert torch.isfinite(lse[1]).all() and (out[1] != 0).any()


def test_causal_short_row_first_queries_see_nothing():
    # bottom-right causal with fewer keys than queries: query i sees keys j <= i + len - Lq
    q, kc, vc, _, _ = _cpu_case(B=2, Lq=7)
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.tensor([3, 10]), causal=True,
                                                   return_lse=True)
    assert (out[0, :4] == 0).all() and torch.isneginf(lse[0, :, :4]).all()
    assert torch.isfinite(lse[0, :, 4:]).all() and torch.isfinite(lse[1]).all()
    # the last query of row 0 sees exactly the 3 keys
    ref, ref_lse, dead, _ = expected_rows(q, kc, vc, [3, 10], True, with_torch=False)
    assert int(dead[0].sum()) == 4 * 4 and not dead[1].any()
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32)


def test_check_lengths_false_runs():
    q, kc, vc, kn, vn = _cpu_case()
    lens = torch.tensor([0, 9, CPU_S_MAX - 2])
    kc2, vc2 = kc.clone(), vc.clone()
    o1 = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=lens, causal=True)
    o2 = flashmin_nn.flash_attn_with_kvcache(q, kc2, vc2, kn, vn, cache_seqlens=lens, causal=True, check_lengths=False)
    assert torch.equal(o1, o2) and torch.equal(kc, kc2) and torch.equal(vc, vc2)
    o3 = flashmin_nn.flash_attn_with_kvcache(q, kc2, vc2, cache_seqlens=4, check_lengths=False)
    assert o3.shape == q.shape and torch.isfinite(o3).all()


def test_garbage_in_unused_cache_is_ignored_cpu():
    # positions past a row's keys are not part of the attention: NaN/Inf there (an uninitialised
    # cache from torch.empty) must not reach the output (FlashAttention-2 ignores them)
    check_kvcache(device="cpu", dtype=torch.float32, kernel="auto", B=3, Hkv=2, group=2, D=16, Lq=2,
                  seqlens=[0, 9, 15], n_new=2, causal=True, S_max=CPU_S_MAX, garbage="nan")


# ---------------------------------------------------------------------------------------------
# argument errors (CPU): each raises ValueError/TypeError naming the argument and the value,
# before anything is written into the cache
# ---------------------------------------------------------------------------------------------
_B, _S, _HKV, _HQ, _D, _LNEW = 2, 10, 2, 4, 8, 2


def _i32(*x):
    return torch.tensor(x, dtype=torch.int32)


ERRORS = {
    "negative_int": (lambda c: dict(cache_seqlens=-2), [r"cache_seqlens", r"-2"]),
    "negative_tensor": (lambda c: dict(cache_seqlens=_i32(3, -1)), [r"cache_seqlens", r"-1\b"]),
    "beyond_int": (lambda c: dict(cache_seqlens=11), [r"cache_seqlens", r"\b11\b"]),
    "beyond_tensor": (lambda c: dict(cache_seqlens=_i32(11, 3)), [r"cache_seqlens", r"\b11\b"]),
    "beyond_with_new_int": (lambda c: dict(k=c["kn"], v=c["vn"], cache_seqlens=9), [r"cache_seqlens", r"\b9\b"]),
    "beyond_with_new_tensor": (lambda c: dict(k=c["kn"], v=c["vn"], cache_seqlens=torch.tensor([2, 9])),
                               [r"cache_seqlens", r"\b9\b"]),
    "k_without_v": (lambda c: dict(k=c["kn"], cache_seqlens=0), [r"\bv\b"]),
    "v_without_k": (lambda c: dict(v=c["vn"], cache_seqlens=0), [r"\bk\b"]),
    "k_wrong_heads": (lambda c: dict(k=randn(_B, _LNEW, _HKV + 1, _D), v=randn(_B, _LNEW, _HKV + 1, _D),
                                     cache_seqlens=0), [r"\bk\.shape", r"\(2, 2, 3, 8\)"]),
    "k_wrong_head_dim": (lambda c: dict(k=randn(_B, _LNEW, _HKV, _D + 8), v=randn(_B, _LNEW, _HKV, _D + 8),
                                        cache_seqlens=0), [r"\bk\.shape", r"\b16\b"]),
    "k_wrong_batch": (lambda c: dict(k=randn(_B + 1, _LNEW, _HKV, _D), v=randn(_B + 1, _LNEW, _HKV, _D),
                                     cache_seqlens=0), [r"\bk\.shape", r"\(3, 2, 2, 8\)"]),
    "k_wrong_rank": (lambda c: dict(k=randn(_B, _HKV, _D), v=randn(_B, _HKV, _D), cache_seqlens=0),
                     [r"\bk\.shape", r"\(2, 2, 8\)"]),
    "v_len_differs_from_k": (lambda c: dict(k=c["kn"], v=randn(_B, _LNEW + 1, _HKV, _D), cache_seqlens=0),
                             [r"\bv\.shape", r"\(2, 3, 2, 8\)"]),
    "k_wrong_dtype": (lambda c: dict(k=c["kn"].double(), v=c["vn"].double(), cache_seqlens=0),
                      [r"\bk\b", r"float64"]),
    "k_not_a_tensor": (lambda c: dict(k=c["kn"].tolist(), v=c["vn"], cache_seqlens=0), [r"\bk\b", r"list"]),
    "new_k_without_seqlens": (lambda c: dict(k=c["kn"], v=c["vn"]), [r"cache_seqlens"]),
    "seqlens_float": (lambda c: dict(cache_seqlens=torch.tensor([3.0, 4.0])), [r"cache_seqlens", r"float"]),
    "seqlens_int16": (lambda c: dict(cache_seqlens=torch.tensor([3, 4], dtype=torch.int16)),
                      [r"cache_seqlens", r"int16"]),
    "seqlens_wrong_length": (lambda c: dict(cache_seqlens=_i32(3, 4, 5)), [r"cache_seqlens", r"\(3,\)"]),
    "seqlens_2d": (lambda c: dict(cache_seqlens=_i32(3, 4).view(2, 1)), [r"cache_seqlens", r"\(2, 1\)"]),
    "seqlens_0d": (lambda c: dict(cache_seqlens=torch.tensor(3, dtype=torch.int32)), [r"cache_seqlens", r"\(\)"]),
    "seqlens_list": (lambda c: dict(cache_seqlens=[3, 4]), [r"cache_seqlens", r"list"]),
    "seqlens_float_scalar": (lambda c: dict(cache_seqlens=3.0), [r"cache_seqlens", r"float"]),
    # another device without a GPU: the meta device
    "seqlens_other_device": (lambda c: dict(cache_seqlens=torch.tensor([3, 4], dtype=torch.int32, device="meta")),
                             [r"cache_seqlens", r"device", r"meta"]),
    "q_kcache_dtype": (lambda c: dict(k_cache=c["kc"].double(), v_cache=c["vc"].double(), cache_seqlens=3),
                       [r"k_cache", r"float64"]),
    "kcache_vcache_shape": (lambda c: dict(v_cache=randn(_B, _S + 1, _HKV, _D), cache_seqlens=3), [r"v_cache"]),
    "q_heads_not_multiple": (lambda c: dict(q=randn(_B, 1, 3, _D), cache_seqlens=3), [r"\bq\b", r"\b3\b"]),
    "q_head_dim": (lambda c: dict(q=randn(_B, 1, _HQ, _D + 8), cache_seqlens=3), [r"\bq\b", r"\b16\b"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    c = dict(q=randn(_B, 1, _HQ, _D), kc=randn(_B, _S, _HKV, _D), vc=randn(_B, _S, _HKV, _D),
             kn=randn(_B, _LNEW, _HKV, _D), vn=randn(_B, _LNEW, _HKV, _D))
    before = c["kc"].clone(), c["vc"].clone()
    build, patterns = ERRORS[case]
    kwargs = dict(q=c["q"], k_cache=c["kc"], v_cache=c["vc"])
    kwargs.update(build(c))
    expect_error(lambda: flashmin_nn.flash_attn_with_kvcache(**kwargs), *patterns, types=(ValueError, TypeError))
    assert torch.equal(c["kc"], before[0]) and torch.equal(c["vc"], before[1]), \
        f"{case}: cache written before the error"


def test_valid_edges_accepted():
    # the limits themselves are fine: 0 and S_max - Lnew
    c = _cpu_case(B=_B, Lq=1, Hq=_HQ, Hkv=_HKV, D=_D, S_max=_S, Lnew=_LNEW)
    q, kc, vc, kn, vn = c
    for s in (0, _S - _LNEW, torch.tensor([0, _S - _LNEW])):
        out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=s)
        assert out.shape == q.shape and torch.isfinite(out).all()
    for s in (0, _S, torch.tensor([0, _S], dtype=torch.int64)):
        out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=s)
        assert out.shape == q.shape and torch.isfinite(out).all()


# =============================================================================================
# Part 2: CUDA, the decode kernel
# =============================================================================================
FP16, BF16 = torch.float16, torch.bfloat16
KERNELS = ["decode", "auto"]
MODES = {                      # (causal, append new k/v)
    "plain": (False, False),
    "append": (False, True),
    "causal": (True, False),
    "causal_append": (True, True),
}
PAD = 5                        # cache slots past the longest row (garbage, never read)


def _require_decode(kernel):
    cap = torch.cuda.get_device_capability()
    if cap < (8, 0):
        pytest.skip(f"the decode kernel needs sm80+ (mma.sync); this GPU is sm{cap[0]}{cap[1]}")
    info = flashmin_nn.list_kernels()["decode"]
    assert info.available, f"decode kernel unavailable on an sm{cap[0]}{cap[1]} GPU: {info.reason}"


def _ragged(kv_len, n_new):
    """B = 3 rows of kv_len, kv_len // 2 + 1, 1 keys in all (each >= 1); with new keys appended the
    cache holds total - n_new of them (at least 0, so short rows grow to n_new)."""
    totals = [kv_len, kv_len // 2 + 1, 1]
    return [max(t - n_new, 0) for t in totals]


def _run_grid_case(dtype, D, q_len, kv_len, group, mode, kernel, Hkv=2, page=None, what=""):
    """One case of the decode grids: 3 ragged rows (_ragged) of Hkv kv heads, contiguous or in
    pages of `page` keys; `what` (when given) names the case in a failure, with its lengths."""
    _require_decode(kernel)
    causal, append = MODES[mode]
    n_new = q_len if append else 0
    seqlens = _ragged(kv_len, n_new)
    if what:
        what = f"{what} Lq={q_len} seqlens={seqlens} new={n_new} g={group} page={page}"
    check_kvcache(device=DEV, dtype=dtype, kernel=kernel, B=3, Hkv=Hkv, group=group, D=D, Lq=q_len,
                  seqlens=seqlens, n_new=n_new, causal=causal, S_max=max(seqlens) + n_new + PAD, page=page, what=what)


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mode", ["plain", "causal", "causal_append"])
@pytest.mark.parametrize("group", [1, 4, 8])
@pytest.mark.parametrize("kv_len", [1, 17, 1000, 4097, 65536])
@pytest.mark.parametrize("q_len", [1, 2, 7, 16])
def test_decode_grid_fp16_d128(q_len, kv_len, group, mode, kernel):
    _run_grid_case(FP16, 128, q_len, kv_len, group, mode, kernel)


@needs_cuda
@pytest.mark.parametrize("page", [16, 256])
@pytest.mark.parametrize("mode", ["plain", "causal_append"])
@pytest.mark.parametrize("group", [1, 4, 8])
@pytest.mark.parametrize("kv_len", [1, 17, 1000, 4097, 65536])
@pytest.mark.parametrize("q_len", [1, 2, 7, 16])
def test_decode_grid_paged_fp16_d128(q_len, kv_len, group, mode, page):
    """The grid above over a paged cache (block_table), read in place by the decode kernel (auto)."""
    _run_grid_case(FP16, 128, q_len, kv_len, group, mode, "auto", page=page)


# the other dtype and head dim on a thinner slice: (dtype, D, q_len, kv_len, group)
THIN = [(dt, D, ql, kv, g) for dt, D in [(BF16, 128), (FP16, 64), (BF16, 64)]
        for ql in (1, 7, 16) for kv, g in [(17, 8), (1000, 1), (4097, 4)]]
THIN += [(BF16, 128, 1, 65536, 8), (BF16, 64, 16, 65536, 4), (FP16, 64, 2, 65536, 1)]


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype,D,q_len,kv_len,group", THIN,
                         ids=[f"{DT_IDS[dt]}-D{D}-q{ql}-kv{kv}-g{g}" for dt, D, ql, kv, g in THIN])
def test_decode_grid_thin(dtype, D, q_len, kv_len, group, mode, kernel):
    _run_grid_case(dtype, D, q_len, kv_len, group, mode, kernel)


# A grid of one to two blocks per SM: on a GPU whose SMs hold two ~100 KB blocks (sm_90) the plan
# runs the head dim 128 pair configuration there, unsplit (csrc/decode/decode_plan.cu, rule e):
# 16-key tiles, so 16-key pages are whole tiles. B = 3 rows of Hkv kv heads, Hkv chosen so that
# the grid has about 1.5 blocks per SM (one query, or a GQA group packed as rows; 7 and 16 queries
# of one head each make a row block; up to 20000 keys, as the 66 heads of an H200 grid make the
# caches and their float64 reference large). On other GPUs the same cases run the default one.
PAIR = [(dt, ql, kv, g, pg) for dt in (FP16, BF16) for ql, g in [(1, 1), (1, 4), (7, 1), (16, 1)]
        for kv in (1, 17, 1000, 4097, 20000) for pg in (None, 16, 256) if dt == FP16 or (pg is None and kv in (17, 4097))]


@needs_cuda
@pytest.mark.parametrize("mode", ["plain", "causal_append"])
@pytest.mark.parametrize("dtype,q_len,kv_len,group,page", PAIR,
                         ids=[f"{DT_IDS[dt]}-q{ql}-kv{kv}-g{g}-p{pg}" for dt, ql, kv, g, pg in PAIR])
def test_decode_grid_of_one_to_two_blocks_per_sm(dtype, q_len, kv_len, group, page, mode):
    Hkv = _full_grid_heads(3, per_sm=1.5)
    sms = torch.cuda.get_device_properties(DEV).multi_processor_count
    _run_grid_case(dtype, 128, q_len, kv_len, group, mode, "auto", Hkv=Hkv, page=page,
                   what=f"pair grid {DT_IDS[dtype]}, {3 * Hkv} blocks on {sms} SMs:")


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("q_len", [1, 7])
@pytest.mark.parametrize("kv_len", [17, 4097, 65536])
def test_decode_empty_row(kv_len, q_len, causal, kernel):
    # a row with cache_seqlens 0 and no new keys: zeros and lse -inf, the others unaffected
    _require_decode(kernel)
    seqlens = [kv_len, 0, 5]
    check_kvcache(device=DEV, dtype=FP16, kernel=kernel, B=3, Hkv=2, group=4, D=128, Lq=q_len,
                  seqlens=seqlens, n_new=0, causal=causal, S_max=kv_len + PAD)


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("q_len,kv_len", [(1, 65536), (16, 65536), (1, 65531)])
def test_decode_many_splits(q_len, kv_len, kernel):
    # one batch row, one head: all the parallelism comes from splitting the keys
    _require_decode(kernel)
    check_kvcache(device=DEV, dtype=FP16, kernel=kernel, B=1, Hkv=1, group=1, D=128, Lq=q_len,
                  seqlens=[kv_len], n_new=0, causal=True, S_max=65536)
    # the same through the SDPA-style entry point, whole cache, bottom-right causal
    q, k, v = (rnd(1, 1, n, 128, dtype=FP16, device=DEV, scale=2.0) for n in (q_len, kv_len, kv_len))
    fn = lambda: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=kv_len - q_len, return_lse=True)
    with flashmin_nn.use_kernel(kernel):
        out, lse = run_poisoned(fn)
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=kv_len - q_len)
    t = torch_sdpa(q, k, v, causal_offset=kv_len - q_len)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"many splits {kernel} q{q_len} kv{kv_len}")
    assert_lse_close(lse, ref_lse, dead, dtype=FP16)


def _full_grid_heads(B, per_sm=1):
    """Kv heads for B rows such that B x Hkv blocks make at least per_sm blocks an SM. With 1,
    every SM has a block: plan_decode's rule for a grid that already fills the GPU (8 splits over a
    cache of >= 32k keys) then applies."""
    return math.ceil(torch.cuda.get_device_properties(DEV).multi_processor_count * per_sm / B)


# (dtype, D, q_len, group, mode): long caches on a grid that fills the GPU. The keys are cut
# into 8 splits (plan_decode in csrc/decode/decode_plan.cu), read in sweep order (interleaved tile groups)
# when each head's keys are contiguous (storage "bhsd", Hugging Face's layout) and as contiguous
# ranges in the (B, S, H, D) cache. Up to 40000 keys: 1250 tiles, so the splits get unequal tile
# counts; the short ragged rows leave most splits empty. (Groups stay small: the float64
# reference repeats K and V per query head.)
FULL_GRID = [(FP16, 128, 1, 1, "plain"), (FP16, 128, 1, 4, "causal_append"), (BF16, 128, 7, 2, "causal"),
             (FP16, 64, 16, 1, "append"), (BF16, 64, 1, 2, "plain")]
FULL_GRID_TOTALS = [40000, 20001, 1, 39999, 7, 32768]   # keys per batch row, new ones included


@needs_cuda
@pytest.mark.parametrize("storage", ["bshd", "bhsd"])
@pytest.mark.parametrize("dtype,D,q_len,group,mode", FULL_GRID,
                         ids=[f"{DT_IDS[dt]}-D{D}-q{ql}-g{g}-{m}" for dt, D, ql, g, m in FULL_GRID])
def test_decode_long_cache_full_grid(dtype, D, q_len, group, mode, storage):
    _require_decode("decode")
    causal, append = MODES[mode]
    n_new = q_len if append else 0
    B = len(FULL_GRID_TOTALS)
    seqlens = [max(t - n_new, 0) for t in FULL_GRID_TOTALS]
    check_kvcache(device=DEV, dtype=dtype, kernel="decode", B=B, Hkv=_full_grid_heads(B), group=group, D=D,
                  Lq=q_len, seqlens=seqlens, n_new=n_new, causal=causal, S_max=max(seqlens) + n_new + PAD,
                  cache_storage=storage)


@needs_cuda
@pytest.mark.parametrize("mask_kind", ["none", "key_padding", "float"])
def test_decode_long_cache_full_grid_sdpa(mask_kind):
    # The bench's case: contiguous (B, H, S, D) K and V (sweep order), one query, through the
    # SDPA-style entry point; masks take the kernel's masked path in the same schedule.
    _require_decode("decode")
    B, D, S = 2, 128, 33000
    H = _full_grid_heads(B)
    q, k, v = make_qkv(B, H, 1, S, D, dtype=FP16, device=DEV, scale=2.0)
    m = {"none": None, "key_padding": key_padding_mask(B, 1, S, device=DEV),
         "float": random_float_mask((B, 1, 1, S), dtype=FP16, device=DEV, neg_inf_p=0.2)}[mask_kind]
    with flashmin_nn.use_kernel("decode"):
        out, lse = run_poisoned(lambda: flashmin_nn.attention(q, k, v, attn_mask=m, return_lse=True))
    ref, ref_lse, dead = ref_attention(q, k, v, attn_mask=m)
    t = torch_sdpa(q, k, v, attn_mask=m)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"full grid S={S} {mask_kind}")
    assert_lse_close(lse, ref_lse, dead, dtype=FP16)


@needs_cuda
@pytest.mark.parametrize("q_len", [1, 7])
def test_decode_cache_larger_than_evict_first_limit(q_len):
    # Caches up to 5x the L2 are read with an evict-first L2 policy, larger ones with the default
    # policy (plan_decode); the grid above stays below the limit, this one is above it.
    _require_decode("decode")
    B, Hkv, D = 2, 8, 128
    l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
    S = 6 * l2 // (B * Hkv * D * 2 * 2) + 17          # K + V bytes of the whole cache > 5x L2
    check_kvcache(device=DEV, dtype=FP16, kernel="decode", B=B, Hkv=Hkv, group=4, D=D, Lq=q_len,
                  seqlens=[S - q_len, S // 3], n_new=q_len, causal=True, S_max=S + PAD)


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
def test_decode_bhsd_cache_storage(kernel):
    # Hugging Face's (B, H, S, D) cache storage passed as (B, S, H, D) views: strided K/V rows
    _require_decode(kernel)
    check_kvcache(device=DEV, dtype=FP16, kernel=kernel, B=3, Hkv=4, group=4, D=128, Lq=1,
                  seqlens=[1000, 77, 0], n_new=1, causal=True, S_max=2048, cache_storage="bhsd")


@needs_cuda
@pytest.mark.parametrize("seqlens_dtype", [torch.int32, torch.int64])
def test_decode_seqlens_dtypes(seqlens_dtype):
    _require_decode("decode")
    check_kvcache(device=DEV, dtype=BF16, kernel="decode", B=3, Hkv=2, group=4, D=128, Lq=2,
                  seqlens=[300, 1, 777], n_new=0, causal=True, S_max=777, seqlens_dtype=seqlens_dtype)


@needs_cuda
def test_decode_int_seqlens_and_none_cuda():
    _require_decode("decode")
    B, Lq, Hq, Hkv, D, S = 2, 3, 8, 2, 128, 1500
    q = rnd(B, Lq, Hq, D, dtype=FP16, device=DEV, scale=2.0)
    kc, vc = rnd(B, S, Hkv, D, dtype=FP16, device=DEV, scale=2.0), rnd(B, S, Hkv, D, dtype=FP16, device=DEV)
    with flashmin_nn.use_kernel("decode"):
        o_int = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=S, causal=True)
        o_t = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.full((B,), S, device=DEV,
                                                                                       dtype=torch.int32), causal=True)
        o_none = run_poisoned(lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, causal=True))
        o_unchecked = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.full((B,), S, device=DEV),
                                                          causal=True, check_lengths=False)
    assert torch.equal(o_int, o_t) and torch.equal(o_int, o_unchecked)
    ref, _, dead, tout = expected_rows(q, kc, vc, [S] * B, True)
    assert_attention_close(o_none.transpose(1, 2), ref, dead, torch_out=tout, what="cache_seqlens=None")
    assert_attention_close(o_int.transpose(1, 2), ref, dead, torch_out=tout, what="cache_seqlens=int")


@needs_cuda
def test_decode_garbage_in_unused_cache_is_ignored():
    # NaN past each row's keys (an uninitialised cache) must not reach the output
    _require_decode("decode")
    for q_len, causal in ((1, False), (7, True)):
        check_kvcache(device=DEV, dtype=FP16, kernel="decode", B=3, Hkv=2, group=4, D=128, Lq=q_len,
                      seqlens=[4000, 33, 0], n_new=q_len, causal=causal, S_max=4200, garbage="nan")


@needs_cuda
def test_decode_deterministic():
    _require_decode("decode")
    B, Hkv, Hq, D, S = 2, 2, 16, 128, 65536
    kc, vc = rnd(B, S, Hkv, D, dtype=FP16, device=DEV, scale=2.0), rnd(B, S, Hkv, D, dtype=FP16, device=DEV)
    lens = torch.tensor([S, 40000], dtype=torch.int32, device=DEV)
    for q_len in (1, 16):
        q = rnd(B, q_len, Hq, D, dtype=FP16, device=DEV, scale=2.0)
        fn = lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, causal=True, return_lse=True)
        with flashmin_nn.use_kernel("decode"):
            o1, l1 = run_poisoned(fn)
            o2, l2 = fn()
        assert torch.equal(o1, o2) and torch.equal(l1, l2), f"decode q_len={q_len}: two runs differ"


@needs_cuda
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_ids)
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("L", [1, 2, 16, 17])
def test_choose_kernel_decode(L, D, dtype):
    _require_decode("decode")
    B, Hq, Hkv, S = 2, 8, 2, 4096
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dtype, device=DEV)
    name = flashmin_nn.choose_kernel(q, k, v)
    if L <= 16:
        assert name == "decode", f"auto picked {name} for L={L} {DT_IDS[dtype]} D={D}"
    else:
        assert name != "decode", f"auto picked decode for L={L} (it serves at most 16 queries)"
    # the (B, S, H, D) views flash_attn_with_kvcache hands to the op
    qf, kf = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
    assert flashmin_nn.choose_kernel(qf.transpose(1, 2), kf.transpose(1, 2)) == name


@needs_cuda
@pytest.mark.parametrize("what,shape,dtype", [("L17", (1, 2, 17, 64), FP16), ("fp32", (1, 2, 1, 64), torch.float32),
                                              ("D256", (1, 2, 1, 256), FP16)])
def test_decode_refuses_clearly(what, shape, dtype):
    _require_decode("decode")
    q = rnd(*shape, dtype=dtype, device=DEV)
    k = rnd(1, 2, 100, shape[-1], dtype=dtype, device=DEV)
    pattern = {"L17": r"17", "fp32": r"float32", "D256": r"256"}[what]
    with flashmin_nn.use_kernel("decode"):
        expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, k), r"decode", pattern,
                     types=(RuntimeError,))


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mask_kind", ["key_padding", "float"])
@pytest.mark.parametrize("L", [1, 5])
@pytest.mark.parametrize("S", [17, 1000, 4097])
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_ids)
def test_decode_sdpa_masks(dtype, S, L, mask_kind, kernel):
    _require_decode(kernel)
    B, Hkv, Hq, D = 2, 2, 8, 128
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dtype, device=DEV, scale=2.0)
    if mask_kind == "key_padding":
        m = key_padding_mask(B, L, S, device=DEV)                                   # (B, 1, 1, S) bool
    else:
        m = random_float_mask((B, Hq, L, S), dtype=dtype, device=DEV, neg_inf_p=0.2)  # (B, H, L, S)
    if kernel == "auto":
        assert flashmin_nn.choose_kernel(q, k, v, attn_mask=m) == "decode"
    fn = lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m, enable_gqa=True)
    with flashmin_nn.use_kernel(kernel):
        out = run_poisoned(fn)
    assert out.shape == (B, Hq, L, D)
    ref, _, dead = ref_attention(q, k, v, attn_mask=m)
    t = torch_sdpa(q, k, v, attn_mask=m)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"{kernel} {DT_IDS[dtype]} S={S} L={L} {mask_kind}")


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("align", ["top_left", "bottom_right"])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("S", [17, 4097])
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_ids)
def test_decode_sdpa_causal(dtype, S, group, align, kernel):
    _require_decode(kernel)
    B, Hkv, L, D = 2, 2, 5, 64
    Hq = Hkv * group
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dtype, device=DEV, scale=2.0)
    co = 0 if align == "top_left" else S - L
    with flashmin_nn.use_kernel(kernel):
        if align == "top_left":   # torch's meaning of is_causal: query i sees keys 0..i
            out = run_poisoned(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                enable_gqa=group > 1))
            lse = None
        else:
            out, lse = run_poisoned(lambda: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=co,
                                                                  return_lse=True))
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=co)
    t = torch_sdpa(q, k, v, causal_offset=co)
    what = f"{kernel} {DT_IDS[dtype]} S={S} g={group} {align}"
    assert_attention_close(out, ref, dead, torch_out=t, what=what)
    if lse is not None:
        assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)


@needs_cuda
def test_decode_cuda_length_errors():
    B, S, Hkv, D = 2, 64, 2, 64
    q = rnd(B, 1, 4, D, dtype=FP16, device=DEV)
    kc, vc = rnd(B, S, Hkv, D, dtype=FP16, device=DEV), rnd(B, S, Hkv, D, dtype=FP16, device=DEV)
    kn, vn = rnd(B, 1, Hkv, D, dtype=FP16, device=DEV), rnd(B, 1, Hkv, D, dtype=FP16, device=DEV)
    before = kc.clone(), vc.clone()
    f = flashmin_nn.flash_attn_with_kvcache
    expect_error(lambda: f(q, kc, vc, kn, vn, cache_seqlens=torch.tensor([3, -4], device=DEV)), r"cache_seqlens",
                 r"-4", types=(ValueError, TypeError))
    expect_error(lambda: f(q, kc, vc, kn, vn, cache_seqlens=torch.tensor([3, S], device=DEV)), r"cache_seqlens",
                 rf"\b{S}\b", types=(ValueError, TypeError))
    expect_error(lambda: f(q, kc, vc, kn, vn, cache_seqlens=torch.tensor([3, 4], dtype=torch.int32)),
                 r"cache_seqlens", r"device", types=(ValueError, TypeError))   # on the CPU, q on CUDA
    expect_error(lambda: f(q, kc, vc, kn.cpu(), vn.cpu(), cache_seqlens=3), r"\bk\b", r"device",
                 types=(ValueError, TypeError))
    assert torch.equal(kc, before[0]) and torch.equal(vc, before[1])


# ---------------------------------------------------------------------------------------------
# CUDA graphs: a decode step captured once, replayed with growing device-side lengths
# ---------------------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("Hq,Hkv,D", [(32, 8, 128), (12, 12, 64)])
def test_decode_step_replayed_in_a_cuda_graph_matches_eager(Hq, Hkv, D):
    # The plan (splits, grid) depends on shapes only, so one capture serves every length: 100
    # replays, each appending one key per row at cache_seqlens and attending to it, against the
    # same call run eagerly on a copy of the cache.
    torch.manual_seed(0)
    dev, dt, B, S_max = "cuda", torch.float16, 4, 8192
    kc = torch.randn(B, S_max, Hkv, D, device=dev, dtype=dt)
    vc = torch.randn(B, S_max, Hkv, D, device=dev, dtype=dt)
    q = torch.randn(B, 1, Hq, D, device=dev, dtype=dt)
    kn, vn = torch.randn(B, 1, Hkv, D, device=dev, dtype=dt), torch.randn(B, 1, Hkv, D, device=dev, dtype=dt)
    lens = torch.tensor([1, 700, 4000, 8000], dtype=torch.int32, device=dev)
    ke, ve = kc.clone(), vc.clone()

    def step(k_cache, v_cache):
        return flashmin_nn.flash_attn_with_kvcache(q, k_cache, v_cache, kn, vn, cache_seqlens=lens, causal=True)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):            # warm-up off the capture (loads the extension, plans)
        step(kc.clone(), vc.clone())
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step(kc, vc)
    start = lens.clone()
    for i in range(100):
        lens.copy_(start + i)                  # new lengths, read on the device at replay
        q.normal_()
        kn.normal_()
        vn.normal_()
        graph.replay()
        exp = step(ke, ve)                     # eager, same inputs, its own cache copy
        torch.cuda.synchronize()
        assert torch.isfinite(out).all(), i
        torch.testing.assert_close(out, exp, rtol=0, atol=2e-3, msg=lambda m: f"replay {i}: {m}")
    torch.testing.assert_close(kc, ke, rtol=0, atol=0)   # the captured appends landed where eager's did


def poisoned_outside(k, v, spans, after):
    """Copies of k and v (B, Hkv, S, D) holding NaN where batch row b's keys lie more than 64 keys
    before its visible span spans[b] = (lo, hi) or `after` keys or more past hi (everywhere for an
    empty span): keys a kernel must never read."""
    k_bad, v_bad = k.clone(), v.clone()
    for b, (lo, hi) in enumerate(spans):
        for t in (k_bad, v_bad):
            if hi == lo:
                t[b] = float("nan")
            else:
                t[b, :, :max(0, lo - 64)] = float("nan")
                t[b, :, hi + after:] = float("nan")
    return k_bad, v_bad


@needs_cuda
@pytest.mark.parametrize("q_len", [1, 4])
@pytest.mark.parametrize("layout", ["bhsd", "static"])
@pytest.mark.parametrize("group", [1, 4])
def test_decode_bool_mask_keys_outside_it_are_never_read(q_len, layout, group):
    """A bool attn_mask narrows the key range the decode kernel reads (csrc/common/softmax.cuh
    mask_key_range): a static cache's empty slots past each row's last visible key and left
    padding before its first are never loaded. Keys more than 64 keys (two 32-key tiles) away
    from the visible ones hold NaN, which any read would carry into the output (0 * NaN in P V;
    masked keys inside a loaded tile may be read); the result must equal the float64 reference on
    the clean tensors. Rows: a short prefix, a middle window (left padding + empty tail), the full
    cache, and one row that sees nothing (zeros; every key NaN)."""
    B, Hkv, D, S = 4, 2, 128, 3000
    Hq = Hkv * group
    k = rnd(B, Hkv, S, D, dtype=torch.float16, device=DEV)
    v = rnd(B, Hkv, S, D, dtype=torch.float16, device=DEV)
    q = rnd(B, Hq, q_len, D, dtype=torch.float16, device=DEV, scale=1.5)
    spans = [(0, 37), (500, 1777), (0, S), (0, 0)]                 # visible keys [lo, hi) per row
    keep = torch.zeros(B, 1, q_len if layout == "static" else 1, S, dtype=torch.bool, device=DEV)
    for b, (lo, hi) in enumerate(spans):
        keep[b, ..., lo:hi] = True
    if layout == "static" and q_len > 1:                           # causal within the filled span
        for b, (lo, hi) in enumerate(spans):
            for i in range(q_len):
                keep[b, 0, i, max(lo, hi - q_len + i + 1):hi] = False
    k_bad, v_bad = poisoned_outside(k, v, spans, after=64)
    mask = keep.expand(B, Hq, q_len, S)
    with flashmin_nn.use_kernel("decode"):
        out = flashmin_nn.scaled_dot_product_attention(q, k_bad, v_bad, attn_mask=mask, enable_gqa=group > 1)
    ref, _, dead = ref_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all(), "a key outside the mask's range was read"
    tout = torch_sdpa(q, k, v, attn_mask=mask)
    assert_attention_close(out, ref, dead, torch_out=tout, dtype=torch.float16)


@needs_cuda
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("holes", [False, True], ids=["dense", "holes"])
@pytest.mark.parametrize("rows", ["one_query", "key_padding_4_queries", "gqa_packed"])
@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "unaligned"])
def test_decode_one_mask_row_read_as_a_range(D, holes, rows, aligned):
    """Where every row of a decode block reads the same bool mask row (one query; a (B, 1, 1, S)
    key padding mask under several queries, causal in-kernel; a GQA group's query heads packed as
    rows) and the row lets through every key between its first and last visible one, the kernel
    reads the mask once, before the K/V tiles, then hides the keys before the first one by their
    index and those past the last one as it hides keys past the cache's end, without loading them
    (decode_kernel.cuh, range_from). Checked: every key
    from the last visible one's successor on holds NaN, which any read would carry into the output;
    with holes in the span (the element-wise path) NaN starts a tile later. Spans start and end off
    the tile grid, reach the mask's last bytes (3001 keys: a tail after the 16-byte chunks), or see
    nothing; an unaligned mask (a view one byte into its storage) takes the byte-wise scan."""
    B, Hkv, S = 4, 2, 3001
    group = 4 if rows == "gqa_packed" else 1
    L = 4 if rows == "key_padding_4_queries" else 1
    Hq = Hkv * group
    k = rnd(B, Hkv, S, D, dtype=torch.float16, device=DEV)
    v = rnd(B, Hkv, S, D, dtype=torch.float16, device=DEV)
    q = rnd(B, Hq, L, D, dtype=torch.float16, device=DEV, scale=1.5)
    spans = [(45, 1777), (0, 1), (2990, 3001), (0, 0)]                # visible keys [lo, hi) per row
    store = torch.zeros(B, 1, 1, S + 1, dtype=torch.bool, device=DEV)
    keep = store[..., 1:] if not aligned else store[..., :S]
    for b, (lo, hi) in enumerate(spans):
        keep[b, ..., lo:hi] = True
        if holes and hi - lo > 2:
            keep[b, ..., lo + 1] = False
            keep[b, ..., (lo + hi) // 2] = False
    k_bad, v_bad = poisoned_outside(k, v, spans, after=64 if holes else 0)
    causal = L > 1
    with flashmin_nn.use_kernel("decode"):
        out = flashmin_nn.attention(q, k_bad, v_bad, keep, None, causal, S - L)
    ref, _, dead = ref_attention(q, k, v, attn_mask=keep, causal_offset=S - L if causal else None)
    assert torch.isfinite(out).all(), "a key outside the mask's range was read"
    tout = torch_sdpa(q, k, v, attn_mask=keep.contiguous(), causal_offset=S - L if causal else None)
    assert_attention_close(out, ref, dead, torch_out=tout, dtype=torch.float16)
