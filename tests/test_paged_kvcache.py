"""flash_attn_with_kvcache with a paged cache (block_table) and with cache rows chosen by index
(cache_batch_idx), on CPU tensors.

Each case is built from a contiguous (B, S, Hkv, D) cache whose pages are scattered over a pool in
a random order, with spare pages and unused block-table entries holding values that must never be
read. Expected: the float64 reference over the contiguous cache (helpers.kvcache_expected), the
plain contiguous call bit for bit, and the pool after the call equal to the contiguous cache's
expected state mapped back through the table (spare pages unchanged).
Calls the CUDA decode kernel does not read in place raise NotImplementedError naming the parameter
(checked with meta tensors, which take the same path, and on a GPU where there is one); the ones it
reads are tests/test_paged_cuda.py's.
"""
import pytest
import torch

import flashmin_nn
from helpers import assert_attention_close, assert_lse_close, expect_error, kvcache_expected

f = flashmin_nn.flash_attn_with_kvcache
PAGES = {1: 20, 7: 4, 16: 3, 256: 2}          # page_block_size -> max_blocks_per_seq


def _rows(B, S, Hkv, D, seqlens):
    """A contiguous cache (B, S, Hkv, D); past each row's keys, values that would dominate if read."""
    kc, vc = torch.randn(B, S, Hkv, D) * 2, torch.randn(B, S, Hkv, D)
    for b, s in enumerate(seqlens):
        kc[b, s:] = torch.randn(S - s, Hkv, D) * 8
        vc[b, s:] += 100
    return kc, vc


def _paged(kc, vc, P, totals, spare=3):
    """Scatter the rows' pages over a pool (num_blocks, P, Hkv, D) in a random order, plus spare pages.
    Table entries past a row's last needed page point outside the pool: they must not be read."""
    B, S, Hkv, D = kc.shape
    M = S // P
    N = B * M + spare
    perm = torch.randperm(N)
    kp, vp = torch.randn(N, P, Hkv, D) * 8, torch.randn(N, P, Hkv, D) + 100
    table = perm[:B * M].view(B, M).to(torch.int32).clone()
    kp[table.long()] = kc.view(B, M, P, Hkv, D)
    vp[table.long()] = vc.view(B, M, P, Hkv, D)
    for b, t in enumerate(totals):
        table[b, (t + P - 1) // P:] = N + 1000 * (b + 1)
    return kp, vp, table


def paged_case(P, M, n_new, Lq, group, D, B=4, Hkv=2):
    """A ragged case over M pages of P keys per row: rows of 0, all, half + 1 and 1 cached keys
    (the first B of them), n_new new keys each, the cache scattered over a shuffled pool (_paged).
    Returns q, kc, vc, kn, vn, kp, vp, table, seqlens (kn = vn = None without new keys)."""
    S = P * M
    full = S - n_new
    seqlens = [0, full, full // 2 + 1, 1][:B]
    totals = [s + n_new for s in seqlens]
    q = torch.randn(B, Lq, Hkv * group, D) * 2
    kc, vc = _rows(B, S, Hkv, D, seqlens)
    kn = vn = None
    if n_new:
        kn, vn = torch.randn(B, n_new, Hkv, D) * 2, torch.randn(B, n_new, Hkv, D)
    kp, vp, table = _paged(kc, vc, P, totals)
    return q, kc, vc, kn, vn, kp, vp, table, seqlens


def _unpage(kp, vp, table, kc, vc):
    """The pool as it must be when the contiguous cache is (kc, vc): pages of live entries replaced."""
    ek, ev = kp.clone(), vp.clone()
    B, M = table.shape
    P = kp.size(1)
    for b in range(B):
        for m in range(M):
            i = int(table[b, m])
            if 0 <= i < kp.size(0):
                ek[i], ev[i] = kc[b, m * P:(m + 1) * P], vc[b, m * P:(m + 1) * P]
    return ek, ev


@pytest.mark.parametrize("Lq", [1, 5])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_new", [0, 2])
@pytest.mark.parametrize("P", sorted(PAGES))
def test_paged_matches_contiguous(P, n_new, causal, group, Lq):
    B, Hkv, D = 4, 2, 16
    q, kc, vc, kn, vn, kp, vp, table, seqlens = paged_case(P, PAGES[P], n_new, Lq, group, D, B=B, Hkv=Hkv)
    table0 = table.clone()
    lens = torch.tensor(seqlens, dtype=torch.int32)
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, seqlens, causal=causal)
    exp_kp, exp_vp = _unpage(kp, vp, table, ekc, evc)
    ptrs = kp.data_ptr(), vp.data_ptr()
    out, lse = f(q, kp, vp, kn, vn, cache_seqlens=lens, block_table=table, causal=causal, return_lse=True)
    what = f"P={P} new={n_new} causal={causal} group={group} Lq={Lq}"
    assert (kp.data_ptr(), vp.data_ptr()) == ptrs
    assert torch.equal(kp, exp_kp) and torch.equal(vp, exp_vp), f"{what}: pool differs from the expected write"
    assert torch.equal(table, table0) and torch.equal(lens, torch.tensor(seqlens, dtype=torch.int32))
    assert out.shape == q.shape and lse.shape == (B, Hkv * group, Lq)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32, what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32, what=what)
    o2, l2 = f(q, kc.clone(), vc.clone(), kn, vn, cache_seqlens=lens, causal=causal, return_lse=True)
    assert torch.equal(out, o2) and torch.equal(lse, l2), f"{what}: differs from the contiguous call"


def test_paged_lengths_as_int_none_and_int64():
    B, Hkv, D, P = 3, 1, 8, 7
    S = 3 * P
    q = torch.randn(B, 2, 2, D)
    kc, vc = _rows(B, S, Hkv, D, [S] * B)
    kp, vp, table = _paged(kc, vc, P, [S] * B)
    for lens in (None, S, 9, torch.tensor([S, 0, 4])):
        plain = f(q, kc, vc, cache_seqlens=lens, causal=True)
        paged = f(q, kp, vp, cache_seqlens=lens, block_table=table, causal=True)
        assert torch.equal(paged, plain), lens


def test_paged_shared_prefix_pages_read_and_private_pages_written():
    """Two rows reading one page (a shared prefix), each appending into its own page."""
    P, Hkv, D = 4, 2, 8
    kp, vp = torch.randn(5, P, Hkv, D), torch.randn(5, P, Hkv, D)
    table = torch.tensor([[3, 0], [3, 1]], dtype=torch.int32)
    q, kn, vn = torch.randn(2, 1, 2, D), torch.randn(2, 1, Hkv, D), torch.randn(2, 1, Hkv, D)
    before = kp.clone(), vp.clone()
    kc = torch.stack([kp[[3, 0]].reshape(2 * P, Hkv, D), kp[[3, 1]].reshape(2 * P, Hkv, D)])
    vc = torch.stack([vp[[3, 0]].reshape(2 * P, Hkv, D), vp[[3, 1]].reshape(2 * P, Hkv, D)])
    lens = torch.tensor([4, 6], dtype=torch.int32)
    out = f(q, kp, vp, kn, vn, cache_seqlens=lens, block_table=table, causal=True)
    assert torch.equal(out, f(q, kc, vc, kn, vn, cache_seqlens=lens, causal=True))
    assert torch.equal(kp[0, 0], kn[0, 0]) and torch.equal(kp[1, 2], kn[1, 0])
    assert torch.equal(vp[0, 0], vn[0, 0]) and torch.equal(vp[1, 2], vn[1, 0])
    changed = (kp != before[0]).flatten(2).any(-1)
    assert changed.nonzero().tolist() == [[0, 0], [1, 2]]
    assert torch.equal(vp[2:], before[1][2:]) and torch.equal(kp[2:], before[0][2:])


def test_cache_batch_idx_permutation_with_new_keys():
    B, Bc, S, Hkv, D = 4, 6, 11, 2, 8
    seqlens = [0, 9, 3, 5]
    idx = torch.randperm(Bc)[:B]
    kc, vc = torch.randn(Bc, S, Hkv, D), torch.randn(Bc, S, Hkv, D)
    q, kn, vn = torch.randn(B, 2, 4, D), torch.randn(B, 2, Hkv, D), torch.randn(B, 2, Hkv, D)
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc[idx], vc[idx], kn, vn, seqlens, causal=True)
    exp_k, exp_v = kc.clone(), vc.clone()
    exp_k[idx], exp_v[idx] = ekc, evc
    for dt in (torch.int32, torch.int64):
        kc2, vc2 = kc.clone(), vc.clone()
        out, lse = f(q, kc2, vc2, kn, vn, cache_seqlens=torch.tensor(seqlens), cache_batch_idx=idx.to(dt),
                     causal=True, return_lse=True)
        assert torch.equal(kc2, exp_k) and torch.equal(vc2, exp_v)
        assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32)
        assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)


def test_cache_batch_idx_repeated_is_read_only():
    B, Bc, S, Hkv, D = 4, 3, 9, 1, 8
    idx = torch.tensor([2, 0, 2, 1], dtype=torch.int32)
    kc, vc = torch.randn(Bc, S, Hkv, D), torch.randn(Bc, S, Hkv, D)
    before = kc.clone(), vc.clone()
    q = torch.randn(B, 1, 2, D)
    lens = torch.tensor([9, 4, 0, 7], dtype=torch.int32)
    out = f(q, kc, vc, cache_seqlens=lens, cache_batch_idx=idx)
    assert torch.equal(out, f(q, kc[idx.long()], vc[idx.long()], cache_seqlens=lens))
    kn = torch.randn(B, 1, Hkv, D)
    expect_error(lambda: f(q, kc, vc, kn, kn.clone(), cache_seqlens=lens, cache_batch_idx=idx),
                 r"cache_batch_idx", r"repeat", types=(ValueError,))
    assert torch.equal(kc, before[0]) and torch.equal(vc, before[1])


def test_bad_block_tables_and_indices():
    B, P, Hkv, D = 2, 4, 1, 8
    kp, vp = torch.randn(5, P, Hkv, D), torch.randn(5, P, Hkv, D)
    q, kn = torch.randn(B, 1, 1, D), torch.randn(B, 1, Hkv, D)
    good = torch.tensor([[0, 1], [2, 3]], dtype=torch.int32)
    lens = torch.tensor([3, 5], dtype=torch.int32)
    before = kp.clone(), vp.clone()
    call = lambda **kw: f(q, kp, vp, kn, kn.clone(), **{"cache_seqlens": lens, "block_table": good, **kw})
    cases = [
        (dict(block_table=good.long()), r"block_table\.dtype=torch\.int64.*int32", TypeError),
        (dict(block_table=good.view(-1)), r"block_table\.shape=\(4,\)", ValueError),
        (dict(block_table=good[:1]), r"block_table\.shape=\(1, 2\).*B=q\.size\(0\)=2", ValueError),
        (dict(block_table=good.tolist()), r"block_table must be a torch\.Tensor", TypeError),
        (dict(block_table=torch.tensor([[0, 1], [2, 5]], dtype=torch.int32)), r"block_table\[1, 1\]=5.*\[0, 5\)",
         ValueError),
        (dict(block_table=torch.tensor([[-1, 1], [2, 3]], dtype=torch.int32)), r"block_table\[0, 0\]=-1",
         ValueError),
        (dict(cache_seqlens=torch.tensor([3, 8], dtype=torch.int32)), r"cache_seqlens.*\[0, 7\].*page_block_size=4",
         ValueError),
        (dict(cache_seqlens=-1), r"cache_seqlens", ValueError),
        (dict(block_table=torch.tensor([[0, 1], [0, 3]], dtype=torch.int32)), r"block_table.*page 0, offset 3",
         ValueError),
        (dict(cache_batch_idx=torch.tensor([0, 1])), r"cache_batch_idx.*block_table", ValueError),
    ]
    for kw, pat, typ in cases:
        err = expect_error(lambda: call(**kw), pat, types=(typ,))
        assert "tensor(" not in str(err), str(err)
        assert torch.equal(kp, before[0]) and torch.equal(vp, before[1]), f"{pat}: pool written before the error"
    expect_error(lambda: f(q, kp[:, :0], vp[:, :0], cache_seqlens=0, block_table=good), r"page_block_size.*0",
                 types=(ValueError,))
    # an entry past the row's pages is not read, whatever it holds
    f(q, kp, vp, cache_seqlens=torch.tensor([3, 4], dtype=torch.int32),
      block_table=torch.tensor([[0, 99], [2, -5]], dtype=torch.int32))
    kc = torch.randn(3, 6, Hkv, D)
    for idx, pat, typ in ((torch.tensor([0, 3]), r"cache_batch_idx.*\[0, 3\).*0 to 3", ValueError),
                          (torch.tensor([0.0, 1.0]), r"cache_batch_idx\.dtype=torch\.float32", TypeError),
                          (torch.tensor([0, 1, 2]), r"cache_batch_idx\.shape=\(3,\)", ValueError)):
        expect_error(lambda: f(q, kc, kc.clone(), cache_seqlens=2, cache_batch_idx=idx), pat, types=(typ,))


def test_non_cpu_tensors_raise_not_implemented_naming_the_parameter():
    """Meta tensors take the same path as CUDA ones (any tensor not on the CPU)."""
    q = torch.empty(2, 1, 2, 8, device="meta")
    kp = torch.empty(4, 16, 2, 8, device="meta")
    table = torch.zeros(2, 2, dtype=torch.int32, device="meta")
    with pytest.raises(NotImplementedError, match=r"block_table \(a paged KV cache\).*CPU tensors only"):
        f(q, kp, kp, cache_seqlens=3, block_table=table)
    with pytest.raises(NotImplementedError, match=r"cache_batch_idx.*CPU tensors only"):
        f(q, kp, kp, cache_seqlens=3, cache_batch_idx=torch.zeros(2, dtype=torch.int32, device="meta"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_raise_not_implemented_naming_the_parameter():
    q = torch.randn(2, 17, 2, 64, device="cuda", dtype=torch.float16)
    kp = torch.randn(4, 24, 2, 64, device="cuda", dtype=torch.float16)   # 24-key pages: not a power of two
    before = kp.clone()
    table = torch.arange(4, dtype=torch.int32, device="cuda").view(2, 2)
    kn = torch.randn(2, 17, 2, 64, device="cuda", dtype=torch.float16)
    with pytest.raises(NotImplementedError, match=r"block_table.*CPU tensors only"):
        f(q, kp, kp, kn, kn, cache_seqlens=3, block_table=table)
    kp16 = torch.randn(4, 16, 2, 64, device="cuda", dtype=torch.float16)   # pages the kernels read, but left padding
    before16 = kp16.clone()
    with pytest.raises(NotImplementedError, match=r"cache_leftpad=.* with block_table on CUDA tensors"):
        f(q, kp16, kp16, kn, kn, cache_seqlens=3, block_table=table,
          cache_leftpad=torch.tensor([1, 0], dtype=torch.int32, device="cuda"))
    assert torch.equal(kp, before) and torch.equal(kp16, before16)


def test_op_reads_rows_by_index_and_from_each_rows_start_on_cpu():
    """The op's kv_batch_idx and k_leftpad (the CUDA kernels read them in place; here the CPU
    implementation): row b is row kv_batch_idx[b] of k / v, seqlens_k[b] keys from k_leftpad[b]."""
    torch.manual_seed(0)
    B, Hq, Hkv, L, S, D = 2, 4, 2, 3, 20, 16
    q = torch.randn(B, Hq, L, D)
    k, v = torch.randn(3, Hkv, S, D), torch.randn(3, Hkv, S, D)
    idx = torch.tensor([2, 0], dtype=torch.int32)
    start = torch.tensor([5, 0], dtype=torch.int32)
    lens = torch.tensor([10, 20], dtype=torch.int32)
    scale = D ** -0.5
    out, lse = torch.ops.flashmin.attention_fwd(q, k, v, None, lens, scale, True, S - L, "reference", -1, -1, 0.0,
                                                None, None, None, None, 0, 0, None, idx, start)
    for b in range(B):
        r, s0, n = int(idx[b]), int(start[b]), int(lens[b])
        ref = torch.softmax((q[b].double() @ k[r, :, s0:s0 + n].double().repeat_interleave(2, 0).transpose(1, 2)) * scale
                            + torch.where(torch.arange(n) <= torch.arange(L).view(-1, 1) + n - L, 0.0, float("-inf")), -1)
        exp = ref @ v[r, :, s0:s0 + n].double().repeat_interleave(2, 0)
        torch.testing.assert_close(out[b].double(), exp, rtol=0, atol=1e-5)
