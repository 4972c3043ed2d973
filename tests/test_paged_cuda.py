"""flash_attn_with_kvcache over a paged cache read in place by the CUDA kernels: the decode kernel
up to 16 queries, the sm80 prefill kernel for longer ones (chunked prefill).

Cases as in tests/test_paged_kvcache.py (a contiguous cache's pages scattered over a pool in a
random order; spare pages, the slots past each row's keys and the unused block-table entries hold
values that must never be read, the entries pointing outside the pool). Expected: the float64
reference over the contiguous cache (helpers.kvcache_expected), the pool after the call equal to
the contiguous cache's expected state mapped back through the table, and the same numbers as the
contiguous CUDA call (same kernel, same tiles: equal up to the order of the splits' merge).
"""
import pytest
import torch

import flashmin_nn
from flashmin_nn import ops
from helpers import assert_attention_close, assert_lse_close, kvcache_expected
from test_paged_kvcache import _unpage, paged_case

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

f = flashmin_nn.flash_attn_with_kvcache
PAGES = {16: 9, 32: 5, 256: 3, 512: 2}          # page_block_size -> max_blocks_per_seq


def _case(P, n_new, Lq, group, D, dtype=torch.float16, B=4, Hkv=2):
    q, kc, vc, kn, vn, kp, vp, table, seqlens = paged_case(P, PAGES[P], n_new, Lq, group, D, B=B, Hkv=Hkv)
    cast = lambda t: None if t is None else t.to(dtype)
    q, kc, vc, kn, vn, kp, vp = (cast(t) for t in (q, kc, vc, kn, vn, kp, vp))
    return q, kc, vc, kn, vn, kp, vp, table, seqlens


@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("Lq", [1, 4, 16, 17, 100])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_new", [0, 1])
@pytest.mark.parametrize("P", sorted(PAGES))
def test_paged_decode_in_place(P, n_new, causal, group, Lq, D):
    _check_in_place(P, n_new, causal, group, Lq, D)


@pytest.mark.parametrize("D", [40, 96])
@pytest.mark.parametrize("Lq", [1, 4])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("P", [16, 256])
def test_paged_decode_in_place_padded_head_dims(P, group, Lq, D):
    """Head dims below the compiled one (64, 128): every tile through the bounded copies."""
    _check_in_place(P, 1, True, group, Lq, D)


def _check_in_place(P, n_new, causal, group, Lq, D):
    q, kc, vc, kn, vn, kp, vp, table, seqlens = _case(P, n_new, Lq, group, D)
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, seqlens, causal=causal)
    exp_kp, exp_vp = _unpage(kp, vp, table, ekc, evc)
    dev = lambda t: None if t is None else t.cuda()
    qd, kpd, vpd, knd, vnd, td = (dev(t) for t in (q, kp, vp, kn, vn, table))
    lens = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    out, lse = f(qd, kpd, vpd, knd, vnd, cache_seqlens=lens, block_table=td, causal=causal, return_lse=True)
    what = f"P={P} new={n_new} causal={causal} group={group} Lq={Lq} D={D}"
    assert torch.equal(kpd.cpu(), exp_kp) and torch.equal(vpd.cpu(), exp_vp), f"{what}: pool differs from the expected write"
    assert out.shape == q.shape and lse.shape == (q.size(0), q.size(2), Lq)
    assert_attention_close(out.transpose(1, 2).cpu(), ref, dead, torch_out=None, dtype=torch.float16, what=what)
    assert_lse_close(lse.cpu(), ref_lse, dead, dtype=torch.float16, what=what)
    o2, l2 = f(qd, dev(kc), dev(vc), knd, vnd, cache_seqlens=lens, causal=causal, return_lse=True)
    assert (out - o2).abs().max().item() <= 2e-3 * o2.abs().max().item(), f"{what}: differs from the contiguous call"


def _pages_of(kc, vc, P):
    """The (B, S, Hkv, D) caches kc, vc in pages of P keys shuffled over a pool of B * S / P pages:
    (k_pages, v_pages, block_table int32 (B, S / P))."""
    B, S, Hkv, D = kc.shape
    M = S // P
    table = torch.randperm(B * M, device=kc.device).view(B, M).to(torch.int32)
    kp = torch.empty(B * M, P, Hkv, D, device=kc.device, dtype=kc.dtype)
    vp = torch.empty_like(kp)
    kp[table.long()] = kc.view(B, M, P, Hkv, D)
    vp[table.long()] = vc.view(B, M, P, Hkv, D)
    return kp, vp, table


@pytest.mark.parametrize("P", [16, 256])
def test_paged_decode_options_and_long_cache(P):
    """A long cache (split plan) with a window, softcap and ALiBi, against the contiguous call."""
    B, Hkv, group, D = 2, 2, 4, 128
    M = 40000 // P + 1
    S = M * P
    q = torch.randn(B, 1, Hkv * group, D, device="cuda", dtype=torch.float16)
    kc = torch.randn(B, S, Hkv, D, device="cuda", dtype=torch.float16)
    vc = torch.randn(B, S, Hkv, D, device="cuda", dtype=torch.float16)
    kp, vp, table = _pages_of(kc, vc, P)
    lens = torch.tensor([S - 5, 33000], dtype=torch.int32, device="cuda")
    kw = dict(causal=True, window_size=(4096, 0), softcap=30.0,
              alibi_slopes=torch.rand(Hkv * group, device="cuda") * 0.01, return_lse=True)
    out, lse = f(q, kp, vp, cache_seqlens=lens, block_table=table, **kw)
    o2, l2 = f(q, kc, vc, cache_seqlens=lens, **kw)
    assert torch.isfinite(out).all()
    assert (out - o2).abs().max().item() <= 2e-3 * o2.abs().max().item()
    assert (lse - l2).abs().max().item() <= 1e-3


@pytest.mark.parametrize("group", [1, 4])
def test_paged_decode_long_rows_over_16_key_pages_head_dim_64(group):
    """A grid under one wave (B=8, 12 query heads) over 16k+ keys in 16-key pages, as the plan runs
    it unsplit in the pair configuration; rows ragged so that most tiles are whole and each row's
    last is cut at a different key. Against the contiguous call and float64 (every row)."""
    B, Hq, D, P = 8, 12, 64, 16
    Hkv = Hq // group
    S = 16400 // P * P
    q = torch.randn(B, 1, Hq, D, device="cuda", dtype=torch.float16)
    kc = torch.randn(B, S, Hkv, D, device="cuda", dtype=torch.float16)
    vc = torch.randn(B, S, Hkv, D, device="cuda", dtype=torch.float16)
    kp, vp, table = _pages_of(kc, vc, P)
    lens = [S, S - 17, 16001, 9000, S - 1, 1, 33, 16384]
    seqlens = torch.tensor(lens, dtype=torch.int32, device="cuda")
    out = f(q, kp, vp, cache_seqlens=seqlens, block_table=table, causal=True)
    o2 = f(q, kc, vc, cache_seqlens=seqlens, causal=True)
    assert torch.isfinite(out).all()
    assert (out - o2).abs().max().item() <= 2e-3 * o2.abs().max().item()
    _, _, ref, _, dead = kvcache_expected(q, kc, vc, None, None, lens, causal=True)   # (B, Hq, 1, D) f64
    got = out.transpose(1, 2)
    assert_attention_close(got, ref, dead, torch_out=None, dtype=torch.float16, what=f"group={group}")
    err = (got.double() - ref).abs().amax(dim=(1, 2, 3))   # and each row's max |err| against its max |ref|
    bound = 5e-3 * ref.abs().amax(dim=(1, 2, 3)) + 1e-4
    assert (err <= bound).all(), f"group={group}: max |err| per row {err.tolist()}, bounds {bound.tolist()}"


def test_paged_decode_calls_the_op_once_with_the_pages(monkeypatch):
    """auto: one op call on the pool itself (no gathered copy) with block_table."""
    calls = []
    real = ops._forward

    def spy(q, k, v, *args, **kw):
        calls.append((tuple(k.shape), args[-1] is not None and len(args[-1]) > 9 and args[-1][9] is not None))
        return real(q, k, v, *args, **kw)

    monkeypatch.setattr(ops, "_forward", spy)
    q, kc, vc, kn, vn, kp, vp, table, seqlens = _case(16, 1, 1, 4, 64)
    lens = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    f(q.cuda(), kp.cuda(), vp.cuda(), kn.cuda(), vn.cuda(), cache_seqlens=lens, block_table=table.cuda(), causal=True)
    N, P, Hkv, D = kp.shape
    assert calls == [((N, Hkv, P, D), True)], calls


@pytest.mark.parametrize("Lq,kernel", [(16, "decode"), (17, "prefill"), (300, "prefill")])
def test_paged_call_picks_the_kernel_by_query_length(monkeypatch, Lq, kernel):
    """auto: the decode kernel up to 16 queries, the sm80 prefill kernel past that; both on the pool."""
    calls = []
    real = ops._forward

    def spy(q, k, v, *args, **kw):
        calls.append((tuple(k.shape), args[-2]))
        return real(q, k, v, *args, **kw)

    monkeypatch.setattr(ops, "_forward", spy)
    P, M, B, Hkv, D = 64, 8, 2, 2, 128
    q = torch.randn(B, Lq, 2 * Hkv, D, device="cuda", dtype=torch.bfloat16)
    kp = torch.randn(B * M, P, Hkv, D, device="cuda", dtype=torch.bfloat16)
    vp = torch.randn_like(kp)
    table = torch.randperm(B * M, device="cuda").view(B, M).to(torch.int32)
    lens = torch.tensor([P * M - Lq, 5], dtype=torch.int32, device="cuda")
    out = f(q, kp, vp, q[:, :, :Hkv].contiguous(), q[:, :, Hkv:].contiguous(), cache_seqlens=lens, block_table=table,
            causal=True)
    assert calls == [((B * M, Hkv, P, D), kernel)], calls
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("P", [16, 256])
@pytest.mark.parametrize("causal", [False, True])
def test_paged_chunked_prefill_head_dim_256(P, causal):
    """Head dim 256 (the prefill kernel only): a 97-query chunk appended to a paged cache."""
    q, kc, vc, kn, vn, kp, vp, table, seqlens = _case(P, 97, 97, 2, 256, dtype=torch.bfloat16, B=3)
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, seqlens, causal=causal)
    dev = lambda t: t.cuda()
    kpd, vpd = dev(kp), dev(vp)
    lens = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    out, lse = f(dev(q), kpd, vpd, dev(kn), dev(vn), cache_seqlens=lens, block_table=dev(table), causal=causal,
                 return_lse=True)
    exp_kp, exp_vp = _unpage(kp, vp, table, ekc, evc)
    assert torch.equal(kpd.cpu(), exp_kp) and torch.equal(vpd.cpu(), exp_vp)
    assert_attention_close(out.transpose(1, 2).cpu(), ref, dead, torch_out=None, dtype=torch.bfloat16, what=f"P={P}")
    assert_lse_close(lse.cpu(), ref_lse, dead, dtype=torch.bfloat16, what=f"P={P}")


def test_paged_decode_refuses_a_bad_table_entry():
    q, kc, vc, kn, vn, kp, vp, table, seqlens = _case(32, 0, 1, 1, 64)
    table[2, 0] = kp.size(0) + 7                                 # a page row 2 reads, outside the pool
    lens = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    with pytest.raises(ValueError, match=r"block_table\[2, 0\]=.* is not a page of k_cache"):
        f(q.cuda(), kp.cuda(), vp.cuda(), cache_seqlens=lens, block_table=table.cuda())
