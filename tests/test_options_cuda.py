"""flash_attn 2.8's options in flashmin's CUDA kernels: window_size, softcap, alibi_slopes and
attention()'s sinks, alone and together, with attn_mask and seqlens_k, through flash_attn_func,
flash_attn_with_kvcache and attention(), each case run with "minimal", "prefill", "prefill_sm90"
and "decode" forced (use_kernel), and a few through "auto".

Reference: the float64 oracle of tests/test_options_cpu.py (`oracle`, with `fa_window` for
flash_attn's reading of window_size), written from the definitions and sharing no code with
flashmin_nn; it runs on the CPU on float64 copies of the very (rounded) tensors the kernel got.
The oracle takes no attn_mask: with a mask the reference is `oracle_masked` below, the same
definitions plus the mask, which test_masked_oracle_agrees_with_the_oracle checks against `oracle`.

Pass rule (tests/helpers.py): NaN never passes, the output is finite, a row that sees no key is
exactly 0 with lse -inf (with sinks: lse = the head's sink). Where torch computes the same thing
(a window, causal, per-row lengths and masks all come down to an SDPA mask), the error is at most
~2x torch SDPA's own in the same dtype (helpers.assert_attention_close); softcap, ALiBi and sinks
have no SDPA counterpart, so those cases get the relative-norm tolerance helpers.DTYPE_RTOL (twice
it for softcap in fp16 on the fast kernels: see SOFTCAP_FP16_FACTOR). lse: -inf exactly where the
oracle's is, else within LSE_ATOL (LSE_ATOL_SOFTCAP with the fast kernels' softcap).

A forced kernel runs a case only where backends.rejection() accepts it (dtype, head dim, query
length, compute capability); elsewhere the case is a skip that carries the kernel's reason. Output
memory is poisoned before each run (helpers.poisoned_call), so an element left unwritten fails.
"""
import math

import pytest
import torch

import flashmin_nn
from flashmin_nn import backends

from helpers import (
    DTYPE_RTOL,
    assert_attention_close,
    poisoned_call,
    randn,
    random_bool_mask,
    random_float_mask,
    rel_err,
    torch_sdpa,
)
from test_options_cpu import fa_window, oracle, slopes

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"
KERNELS = ["minimal", "prefill", "prefill_sm90", "decode"]
FP16, BF16, FP32 = torch.float16, torch.bfloat16, torch.float32
DT_IDS = {FP16: "fp16", BF16: "bf16", FP32: "fp32"}
HEADS = [(8, 2), (4, 1)]                        # (Hq, Hkv): GQA, MQA
INF = math.inf
NAN = float("nan")

# The fast kernels ("prefill", "prefill_sm90", "decode", and "auto", which picks among them) compute
# softcap's tanh with tanh.approx.f32 (csrc/common/ptx.cuh fast_tanh; relative error about 2^-11, as
# flash_attn does). A capped score of size c is then off by up to c * 2^-11, the size of fp16's own
# rounding of the inputs, so in fp16 the output may be off by about twice the usual: 2x
# DTYPE_RTOL[fp16]. "minimal" uses the accurate tanhf; bf16's tolerance (8x fp16's) already covers it.
SOFTCAP_FP16_FACTOR = 2.0
# lse in fp32 from scores formed in fp32 out of the (exact) inputs: well within 1e-3 of the float64
# oracle whatever the input dtype. With the fast tanh a capped score is off by up to c * 2^-11
# (5e-3 for c = 30 and scores |s| <= 12 here), and lse with it.
LSE_ATOL = 1e-3
LSE_ATOL_SOFTCAP = {FP32: 1e-3, FP16: 1e-2, BF16: 3e-2}
SINK_ATOL = 1e-5                                # a row that sees no key: lse is its sink (fp32, round trip via log2)


def _lens_ids(lens):
    return [f"{a}x{b}" for a, b in lens]


def _win_id(w):
    return f"w{w[0]}_{w[1]}"


def _dt_id(dt):
    return DT_IDS[dt]


# ---------------------------------------------------------------------------------------------
# inputs, the reference, the rule
# ---------------------------------------------------------------------------------------------
def blhd(B, S, H, D, dtype, scale=1.5):
    """(B, S, H, D) on the GPU (flash_attn's layout): fresh N(0, scale^2) values rounded to dtype."""
    return randn(B, S, H, D, dtype=dtype, device=DEV, scale=scale)


def bhld(B, H, L, D, dtype, scale=1.5):
    """(B, H, L, D) on the GPU (attention()'s layout): fresh N(0, scale^2) values rounded to dtype."""
    return randn(B, H, L, D, dtype=dtype, device=DEV, scale=scale)


def alibi_slopes(kind, B, Hq):
    """None, or fp32 slopes in [0.05, 0.55] of shape (Hq,) (kind "h") or (B, Hq) (kind "bh")."""
    s = slopes(kind, B, Hq)
    return None if s is None else s.to(DEV)


def sink_logits(Hq):
    """fp32 (Hq,) sink logits in [-2, 3]."""
    return (torch.rand(Hq) * 5.0 - 2.0).to(DEV)


def make_mask(kind, B, Hq, Sq, Sk, dtype):
    """None; "bool": (B, 1, Sq, Sk), True = attend, broadcast over heads; "float": additive
    (B, Hq, Sq, Sk) in the inputs' dtype, N(0, 1) values with some -inf."""
    if kind is None:
        return None
    if kind == "bool":
        return random_bool_mask((B, 1, Sq, Sk), p=0.7, device=DEV)
    return random_float_mask((B, Hq, Sq, Sk), dtype=dtype, device=DEV, neg_inf_p=0.2)


def visible(nb, Sq, Sk, offsets, *, lens=None, causal=False, window=(-1, -1)):
    """(B, 1, Sq, Sk) bool, the oracle's definition: query i of batch b (diagonal d_i = i + offsets[b])
    sees key j < lens[b] (None: Sk) iff d_i - left <= j <= d_i + right (negative side: no limit) and,
    if causal, j <= d_i. For torch's mask and for the rows that see no key."""
    i = torch.arange(Sq).view(1, Sq, 1)
    j = torch.arange(Sk).view(1, 1, Sk)
    d = i + torch.tensor(offsets, dtype=torch.int64).view(nb, 1, 1)          # (B, Sq, 1)
    n = torch.tensor([Sk] * nb if lens is None else list(lens), dtype=torch.int64).view(nb, 1, 1)
    vis = j < n
    if causal:
        vis = vis & (j <= d)
    left, right = window
    if left >= 0:
        vis = vis & (j >= d - left)
    if right >= 0:
        vis = vis & (j <= d + right)
    return vis.unsqueeze(1)


def oracle_masked(q, k, v, offsets, mask, *, lens=None, causal=False, window=(-1, -1), softcap=0.0, alibi=None,
                  sinks=None, scale=None):
    """test_options_cpu.oracle with an attn_mask too (the oracle takes none): the same definitions,
    and the mask, bool (True = attend) or float (added to the score after softcap and ALiBi),
    broadcast to (B, Hq, Sq, Sk). q (B, Hq, Sq, D), k/v (B, Hkv, Sk, D) on the CPU; returns out
    (B, Hq, Sq, Dv) and lse (B, Hq, Sq), float64."""
    nb, Hq, Sq, Dq = q.shape
    Hkv, Sk, Dv = k.shape[1], k.shape[2], v.shape[3]
    G = Hq // Hkv
    scale = 1.0 / math.sqrt(Dq) if scale is None else scale
    mask = mask.expand(nb, Hq, Sq, Sk)
    seen = visible(nb, Sq, Sk, offsets, lens=lens, causal=causal, window=window)[:, 0]   # (B, Sq, Sk)
    out = torch.zeros(nb, Hq, Sq, Dv, dtype=torch.float64)
    lse = torch.full((nb, Hq, Sq), -INF, dtype=torch.float64)
    for b in range(nb):
        n = Sk if lens is None else int(lens[b])
        kb = k[b, :, :n].double().repeat_interleave(G, dim=0)                # (Hq, n, D): head h reads kv head h // G
        vb = v[b, :, :n].double().repeat_interleave(G, dim=0)
        s = (q[b].double() @ kb.transpose(1, 2)) * scale                     # (Hq, Sq, n)
        if softcap > 0:
            s = softcap * torch.tanh(s / softcap)
        if alibi is not None:
            slope = (alibi if alibi.dim() == 1 else alibi[b]).double().view(Hq, 1, 1)
            d = torch.arange(Sq, dtype=torch.float64).view(Sq, 1) + offsets[b]
            s = s - slope * (torch.arange(n, dtype=torch.float64).view(1, n) - d).abs()
        mb = mask[b, :, :, :n]
        s = s.masked_fill(~mb, -INF) if mb.dtype == torch.bool else s + mb.double()
        s = s.masked_fill(~seen[b, :, :n], -INF)
        if sinks is not None:
            s = torch.cat([s, sinks.double().view(Hq, 1, 1).expand(Hq, Sq, 1)], dim=2)
            vb = torch.cat([vb, torch.zeros(Hq, 1, Dv, dtype=torch.float64)], dim=1)
        if s.shape[2] == 0:
            continue
        m = s.amax(dim=2, keepdim=True)                                      # (Hq, Sq, 1)
        live = m > -INF
        p = torch.exp(s - torch.where(live, m, torch.zeros_like(m)))
        den = p.sum(dim=2, keepdim=True)
        o = (p @ vb) / torch.where(live, den, torch.ones_like(den))
        out[b] = torch.where(live, o, torch.zeros_like(o))
        lse[b] = torch.where(live, m + torch.log(den), torch.full_like(m, -INF))[..., 0]
    return out, lse


def expected(q, k, v, offsets, *, lens=None, causal=False, window=(-1, -1), softcap=0.0, alibi=None, sinks=None,
             mask=None):
    """The oracle on float64 CPU copies of the kernel's own inputs q (B, Hq, Sq, D), k, v (B, Hkv, Sk, D).
    Returns ref (B, Hq, Sq, D), ref_lse (B, Hq, Sq), no_key (B, Hq, Sq): the rows that see no key, and
    vis (B, 1 or Hq, Sq, Sk): what each row sees (for torch's mask)."""
    q64, k64, v64 = (t.detach().cpu().double() for t in (q, k, v))
    a = None if alibi is None else alibi.cpu()
    sk = None if sinks is None else sinks.cpu()
    nb, Hq, Sq = q.shape[:3]
    vis = visible(nb, Sq, k.shape[2], offsets, lens=lens, causal=causal, window=window)
    kw = dict(lens=lens, causal=causal, window=window, softcap=softcap, alibi=a, sinks=sk)
    if mask is None:
        ref, ref_lse = oracle(q64, k64, v64, offsets, **kw)
    else:
        m = mask.cpu()
        ref, ref_lse = oracle_masked(q64, k64, v64, offsets, m, **kw)
        vis = vis & (m if m.dtype == torch.bool else m > -INF)
    no_key = (~vis.any(dim=-1)).expand(nb, Hq, Sq).contiguous()
    if sinks is None:   # visible() is the oracle's geometry: it must find the rows the oracle gives lse = -inf
        assert torch.equal(no_key, torch.isneginf(ref_lse)), "visible() disagrees with the oracle's rows that see no key"
    return ref, ref_lse, no_key, vis


def sdpa(q, k, v, vis, mask=None):
    """torch's SDPA in the inputs' dtype on the same problem: what each row sees (vis, the window,
    causal limit, lengths and a bool mask together) as its mask, or a float mask with -inf outside
    vis. Keys no row sees may hold NaN (unused cache slots): torch gets them as 0."""
    allowed = vis.to(q.device)
    m = allowed if mask is None or mask.dtype == torch.bool else mask.masked_fill(~allowed, -INF)
    return torch_sdpa(q, k.nan_to_num(), v.nan_to_num(), attn_mask=m)


def run(kernel, fn, q, k, v, mask=None):
    """fn() with `kernel` forced, its outputs' memory poisoned first (helpers.poisoned_call: out
    finite, lse never NaN). q, k, v: (B, H, L, D) as the op gets them. A skip that carries the
    reason where the kernel is not available here or backends.rejection refuses the call."""
    if kernel != "auto":
        info = flashmin_nn.list_kernels()[kernel]
        if not info.available:
            if kernel == "minimal":
                pytest.fail(f"the minimal kernel is not available on a CUDA machine: {info.reason}")
            pytest.skip(f"{kernel} not available: {info.reason}")
        why = backends.rejection(kernel, q, k, v, mask)
        if why is not None:
            pytest.skip(f"{kernel} does not serve this call: {why}")
    with flashmin_nn.use_kernel(kernel):
        return poisoned_call(fn)


def check(kernel, out, lse, ref, ref_lse, no_key, *, dtype, softcap=0.0, torch_out=None, sinks=None, what=""):
    """A kernel's out (B, H, L, D) and lse (B, H, L) against the oracle's ref and ref_lse. no_key: the
    rows that see no key (out exactly 0, lse -inf, or the head's sink with sinks). torch_out: SDPA's
    output on the same problem where torch computes the same thing (the rule is then ~2x its error),
    else None (DTYPE_RTOL)."""
    out, lse = out.detach().cpu(), lse.detach().cpu()
    assert out.dtype == dtype, f"{what}: out.dtype={out.dtype}, expected {dtype}"
    assert out.shape == ref.shape, f"{what}: out shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: {(~torch.isfinite(out)).sum().item()} non-finite outputs"
    assert (out[no_key] == 0).all(), f"{what}: rows that see no key must be exactly 0"
    fast_tanh = softcap > 0 and kernel != "minimal"
    assert torch_out is None or softcap == 0, "torch has no softcap: no SDPA comparison with it"
    if fast_tanh and dtype == FP16:
        err = rel_err(out, ref, ~no_key)
        tol = SOFTCAP_FP16_FACTOR * DTYPE_RTOL[dtype]
        assert err <= tol, f"{what}: rel error {err:.3e} > {tol:.1e} (fp16 with the fast kernels' tanh.approx)"
    else:
        t = None if torch_out is None else torch_out.detach().cpu()
        assert_attention_close(out, ref, no_key, torch_out=t, dtype=dtype, what=what)

    assert lse.dtype == torch.float32, f"{what}: lse.dtype={lse.dtype}"
    assert lse.shape == ref_lse.shape, f"{what}: lse shape {tuple(lse.shape)} != {tuple(ref_lse.shape)}"
    assert not torch.isnan(lse).any(), f"{what}: lse has NaN"
    dead = torch.isneginf(ref_lse)
    assert torch.equal(torch.isneginf(lse), dead), f"{what}: lse must be -inf exactly where the oracle's is"
    live = ~dead
    if live.any():
        assert torch.isfinite(lse[live]).all(), f"{what}: lse not finite on rows with a finite oracle lse"
        err = (lse[live].double() - ref_lse[live]).abs().max().item()
        tol = LSE_ATOL_SOFTCAP[dtype] if fast_tanh else LSE_ATOL
        assert err <= tol, f"{what}: lse error {err:.3e} > {tol:.1e}"
    if sinks is not None and no_key.any():
        want = sinks.detach().cpu().float().view(1, -1, 1).expand_as(lse)[no_key]
        err = (lse[no_key] - want).abs().max().item()
        assert err <= SINK_ATOL, f"{what}: a row that sees no key must have lse = its sink (error {err:.3e})"


def func_case(kernel, Sq, Sk, heads, D, dtype, *, causal, window=(-1, -1), softcap=0.0, alibi=None, B=2):
    """flash_attn_func ((B, S, H, D) tensors, the diagonal d_i = i + Sk - Sq) against the oracle with
    flash_attn's reading of the window (fa_window)."""
    Hq, Hkv = heads
    q, k, v = blhd(B, Sq, Hq, D, dtype), blhd(B, Sk, Hkv, D, dtype), blhd(B, Sk, Hkv, D, dtype, 1.0)
    a = alibi_slopes(alibi, B, Hq)
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)   # (B, H, S, D) views, as the op gets them
    fn = lambda: flashmin_nn.flash_attn_func(q, k, v, causal=causal, window_size=window, softcap=softcap,
                                             alibi_slopes=a, return_lse=True)
    out, lse = run(kernel, fn, qh, kh, vh)
    assert out.shape == (B, Sq, Hq, D) and out.is_contiguous(), f"out {tuple(out.shape)} strides {out.stride()}"
    ref, ref_lse, no_key, vis = expected(qh, kh, vh, [Sk - Sq] * B, causal=causal, window=fa_window(window, Sk),
                                         softcap=softcap, alibi=a)
    t = sdpa(qh, kh, vh, vis) if softcap == 0 and a is None else None
    what = (f"{kernel} flash_attn_func {DT_IDS[dtype]} Sq={Sq} Sk={Sk} heads={heads} D={D} causal={causal} "
            f"window={window} softcap={softcap} alibi={alibi}")
    check(kernel, out.transpose(1, 2), lse, ref, ref_lse, no_key, dtype=dtype, softcap=softcap, torch_out=t, what=what)
    return no_key


def attn_case(kernel, Sq, Sk, heads, D, dtype, *, B=2, offset=None, causal=False, window=(-1, -1), softcap=0.0,
              alibi=None, sinks=False, mask=None, lens=None):
    """attention() ((B, H, L, D) tensors, the window taken as given around d_i = i + causal_offset) against
    the oracle. offset: causal_offset (None: Sk - Sq); mask: None, "bool" or "float" (make_mask); lens:
    per-batch key counts given as seqlens_k (the diagonal moves by lens[b] - Sk), the keys past them NaN."""
    Hq, Hkv = heads
    co = Sk - Sq if offset is None else offset
    q, k, v = bhld(B, Hq, Sq, D, dtype), bhld(B, Hkv, Sk, D, dtype), bhld(B, Hkv, Sk, D, dtype, 1.0)
    a = alibi_slopes(alibi, B, Hq)
    sk = sink_logits(Hq) if sinks else None
    m = make_mask(mask, B, Hq, Sq, Sk, dtype)
    seqlens = None
    if lens is not None:
        seqlens = torch.tensor(lens, dtype=torch.int32, device=DEV)
        for b, n in enumerate(lens):                 # past each row's keys: never read
            k[b, :, n:] = NAN
            v[b, :, n:] = NAN
    fn = lambda: flashmin_nn.attention(q, k, v, attn_mask=m, is_causal=causal, causal_offset=co, return_lse=True,
                                       window_size=window, softcap=softcap, alibi_slopes=a, sinks=sk,
                                       seqlens_k=seqlens)
    out, lse = run(kernel, fn, q, k, v, m)
    offsets = [co] * B if lens is None else [co + n - Sk for n in lens]
    ref, ref_lse, no_key, vis = expected(q, k, v, offsets, lens=lens, causal=causal, window=window, softcap=softcap,
                                         alibi=a, sinks=sk, mask=m)
    t = sdpa(q, k, v, vis, m) if softcap == 0 and a is None and sk is None else None
    what = (f"{kernel} attention {DT_IDS[dtype]} Sq={Sq} Sk={Sk} heads={heads} D={D} offset={co} causal={causal} "
            f"window={window} softcap={softcap} alibi={alibi} sinks={sinks} mask={mask} lens={lens}")
    check(kernel, out, lse, ref, ref_lse, no_key, dtype=dtype, softcap=softcap, torch_out=t, sinks=sk, what=what)
    return no_key


def _same(a, b):
    """Bitwise-equal values, NaN where NaN."""
    return (a.shape == b.shape and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))


def kvcache_case(kernel, dtype, Lq, *, window=(-1, -1), softcap=0.0, alibi=None, seqlens=(0, 37, 1000), S_max=1100):
    """flash_attn_with_kvcache, causal, Lq new keys appended to each row at cache_seqlens[b] (the slots
    past each row's keys hold NaN: never read), against the oracle over each row's keys: row b holds
    len_b = cache_seqlens[b] + Lq keys and query i's diagonal is key i + len_b - Lq. flash_attn reads
    window_size against the cache's capacity (seqlen_k = k_cache.size(1)): fa_window(window, S_max)."""
    B, Hq, Hkv, D = len(seqlens), 8, 2, 128
    kc, vc = blhd(B, S_max, Hkv, D, dtype), blhd(B, S_max, Hkv, D, dtype, 1.0)
    for b, s0 in enumerate(seqlens):
        kc[b, s0:] = NAN
        vc[b, s0:] = NAN
    q, kn, vn = blhd(B, Lq, Hq, D, dtype), blhd(B, Lq, Hkv, D, dtype), blhd(B, Lq, Hkv, D, dtype, 1.0)
    a = alibi_slopes(alibi, B, Hq)
    want_k, want_v = kc.detach().cpu().clone(), vc.detach().cpu().clone()   # the caches after the call
    for b, s0 in enumerate(seqlens):
        want_k[b, s0:s0 + Lq] = kn[b].cpu()
        want_v[b, s0:s0 + Lq] = vn[b].cpu()
    cache_seqlens = torch.tensor(list(seqlens), dtype=torch.int32, device=DEV)
    fn = lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=cache_seqlens, causal=True,
                                                     window_size=window, softcap=softcap, alibi_slopes=a,
                                                     return_softmax_lse=True)
    qh, kh, vh = q.transpose(1, 2), kc.transpose(1, 2), vc.transpose(1, 2)
    out, lse = run(kernel, fn, qh, kh, vh)
    assert _same(kc.cpu(), want_k) and _same(vc.cpu(), want_v), \
        "the new keys/values must land at cache_seqlens[b] .. + Lq - 1, and nothing else in the cache change"
    assert out.shape == (B, Lq, Hq, D)
    lens = [s0 + Lq for s0 in seqlens]
    ref, ref_lse, no_key, vis = expected(qh, kh, vh, [n - Lq for n in lens], lens=lens, causal=True,
                                         window=fa_window(window, S_max), softcap=softcap, alibi=a)
    t = sdpa(qh, kh, vh, vis) if softcap == 0 and a is None else None
    what = f"{kernel} kvcache {DT_IDS[dtype]} Lq={Lq} seqlens={list(seqlens)} window={window} softcap={softcap} alibi={alibi}"
    check(kernel, out.transpose(1, 2), lse, ref, ref_lse, no_key, dtype=dtype, softcap=softcap, torch_out=t, what=what)


# ---------------------------------------------------------------------------------------------
# the reference for masks: oracle_masked against test_options_cpu's oracle (CPU only)
# ---------------------------------------------------------------------------------------------
def test_masked_oracle_agrees_with_the_oracle():
    """A mask that hides nothing changes nothing; a bool mask (or -inf float mask) that is the window
    is the window; an additive mask constant along each row leaves out as it is and adds the constant
    to lse. Checked with every option (and per-row lengths), against test_options_cpu.oracle."""
    B, Hq, Hkv, Sq, Sk, D = 2, 4, 2, 9, 23, 16
    q, k, v = (torch.randn(B, Hq, Sq, D) * 1.5).double(), (torch.randn(B, Hkv, Sk, D) * 1.5).double(), \
        torch.randn(B, Hkv, Sk, D).double()
    lens, offsets = [17, 23], [-3, 23 - Sq + 1]          # batch 0: rows 0..2 see no key (causal)
    opts = dict(lens=lens, causal=True, softcap=5.0, alibi=slopes("bh", B, Hq), sinks=torch.rand(Hq) * 5 - 2)
    ref, ref_lse = oracle(q, k, v, offsets, window=(4, 1), **opts)
    for mask in (torch.ones(B, 1, Sq, Sk, dtype=torch.bool), torch.zeros(B, Hq, Sq, Sk)):
        out, lse = oracle_masked(q, k, v, offsets, mask, window=(4, 1), **opts)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(lse, ref_lse, rtol=0, atol=1e-12)
    win = visible(B, Sq, Sk, offsets, window=(4, 1))                            # (B, 1, Sq, Sk)
    for mask in (win, torch.zeros(B, Hq, Sq, Sk).masked_fill(~win, -INF)):
        out, lse = oracle_masked(q, k, v, offsets, mask, **opts)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(lse, ref_lse, rtol=0, atol=1e-12)
    del opts["sinks"]                                                           # a sink does not move with the row
    ref, ref_lse = oracle(q, k, v, offsets, window=(4, 1), **opts)
    shift = torch.randn(B, Hq, Sq, 1).double()
    out, lse = oracle_masked(q, k, v, offsets, shift.expand(B, Hq, Sq, Sk), window=(4, 1), **opts)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    live = torch.isfinite(ref_lse)
    torch.testing.assert_close(lse[live], (ref_lse + shift[..., 0])[live], rtol=0, atol=1e-12)
    assert torch.equal(torch.isneginf(lse), torch.isneginf(ref_lse)) and (~live).any() and live.any()


# ---------------------------------------------------------------------------------------------
# 1. window_size through flash_attn_func
# ---------------------------------------------------------------------------------------------
WINDOWS = [(0, 0), (3, 0), (5, 7), (-1, 4), (16, -1), (100, 100), (256, 0)]
GRID_LENS = [(1, 1), (1, 17), (7, 1000), (16, 97), (97, 97), (97, 1000), (1000, 97)]
ALL_LENS = [(1, 1), (1, 17), (1, 1025), (7, 1000), (16, 97), (17, 17), (97, 97), (97, 1000), (1000, 97), (1025, 1025)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("window", WINDOWS, ids=_win_id)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("Sq,Sk", GRID_LENS, ids=_lens_ids(GRID_LENS))
def test_window(Sq, Sk, causal, window, kernel):
    """Every window, causal or not, over lengths with Sq = Sk, Sq < Sk and Sq > Sk (fp16, D=64, GQA)."""
    func_case(kernel, Sq, Sk, (8, 2), 64, FP16, causal=causal, window=window)


# Every pair of (heads, head dim, dtype) values appears once.
SWEEP = [((8, 2), 64, FP16), ((8, 2), 128, BF16), ((4, 1), 64, BF16), ((4, 1), 128, FP16)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("window,causal", [((5, 7), False), ((256, 0), True)], ids=["w5_7", "w256_0-causal"])
@pytest.mark.parametrize("heads,D,dtype", SWEEP, ids=[f"h{h[0]}_{h[1]}-d{d}-{DT_IDS[t]}" for h, d, t in SWEEP])
@pytest.mark.parametrize("Sq,Sk", ALL_LENS, ids=_lens_ids(ALL_LENS))
def test_window_sweep(Sq, Sk, heads, D, dtype, window, causal, kernel):
    """Two windows over every length, GQA and MQA, head dims 64 and 128, fp16 and bf16."""
    func_case(kernel, Sq, Sk, heads, D, dtype, causal=causal, window=window)


# Windows over more work tiles than the H200's 132 SMs (B = 4, 16 query heads): the Hopper kernel's
# persistent walk gives its last rounds out by the host's plan of the tiles' costs (TileTail).
@pytest.mark.parametrize("Sq,Sk,D,window,causal", [(1025, 1025, 64, (256, 0), True), (2000, 2000, 64, (300, 300), False),
                                                   (1000, 1000, 64, (97, -1), False)],
                         ids=["1025-d64-w256_0-causal", "2000-d64-w300_300", "1000-d64-w97_-1"])
def test_window_over_many_rounds(Sq, Sk, D, window, causal):
    func_case("prefill_sm90", Sq, Sk, (16, 4), D, FP16, causal=causal, window=window, B=4)


# fp32 runs on "minimal" only, head dim 256 on "minimal" and the prefill kernels (the others: skips).
DTYPE_DIMS = [(FP32, 64), (FP32, 128), (FP16, 256), (BF16, 256)]
DD_LENS = [(1, 17), (17, 17), (97, 1000), (1000, 97), (1025, 1025)]
DD_OPTS = {
    "w5_7": dict(window=(5, 7)),
    "w256_0-causal": dict(window=(256, 0), causal=True),
    "all-causal": dict(window=(64, 0), softcap=10.0, alibi="bh", sinks=True, causal=True),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("opts", list(DD_OPTS))
@pytest.mark.parametrize("dtype,D", DTYPE_DIMS, ids=[f"{DT_IDS[t]}-d{d}" for t, d in DTYPE_DIMS])
@pytest.mark.parametrize("Sq,Sk", DD_LENS, ids=_lens_ids(DD_LENS))
def test_options_fp32_and_head_dim_256(Sq, Sk, dtype, D, opts, kernel):
    """attention() with windows and with every option together, in fp32 ("minimal") and at head dim 256."""
    attn_case(kernel, Sq, Sk, (8, 2), D, dtype, **DD_OPTS[opts])


# ---------------------------------------------------------------------------------------------
# 2. softcap, 3. alibi_slopes (flash_attn_func)
# ---------------------------------------------------------------------------------------------
OPT_LENS = [(1, 1025), (16, 97), (97, 1000), (1000, 97)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [FP16, BF16, FP32], ids=_dt_id)
@pytest.mark.parametrize("softcap", [5.0, 30.0])
@pytest.mark.parametrize("window,causal", [((-1, -1), False), ((-1, -1), True), ((8, 0), True), ((5, 7), False)],
                         ids=["full", "causal", "w8_0-causal", "w5_7"])
@pytest.mark.parametrize("Sq,Sk", OPT_LENS, ids=_lens_ids(OPT_LENS))
def test_softcap(Sq, Sk, window, causal, softcap, dtype, kernel):
    """softcap alone (causal or not) and with a window; fp32 on "minimal" (accurate tanhf)."""
    func_case(kernel, Sq, Sk, (8, 2), 128, dtype, causal=causal, window=window, softcap=softcap)


# Softcap alone at every head dim, over key ranges of one to sixteen 128-key tiles, and with a cap
# below the softmax scale (the tanh's argument then larger than the raw score).
CAP_Q_LENS = [(1025, 1025), (200, 2000), (64, 300)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
@pytest.mark.parametrize("softcap", [30.0, 0.05])
@pytest.mark.parametrize("D", [64, 128, 256])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("Sq,Sk", CAP_Q_LENS, ids=_lens_ids(CAP_Q_LENS))
def test_softcap_head_dims(Sq, Sk, causal, D, softcap, dtype, kernel):
    """softcap alone over short and long key ranges, head dims 64, 128 and 256, fp16 and bf16."""
    func_case(kernel, Sq, Sk, (8, 2), D, dtype, causal=causal, softcap=softcap)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
@pytest.mark.parametrize("window", [(-1, -1), (6, 3)], ids=["nowin", "w6_3"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("kind", ["h", "bh"])
@pytest.mark.parametrize("Sq,Sk", OPT_LENS, ids=_lens_ids(OPT_LENS))
def test_alibi(Sq, Sk, kind, causal, window, dtype, kernel):
    """alibi_slopes (Hq,) and (B, Hq), causal or not, with and without a window (causal: (6, 3) runs as (6, 0))."""
    func_case(kernel, Sq, Sk, (8, 2), 64, dtype, causal=causal, window=window, alibi=kind)


# ---------------------------------------------------------------------------------------------
# 4. sinks through attention(), alone and with every option
# ---------------------------------------------------------------------------------------------
SINK_LENS = [(1, 17), (16, 97), (97, 97), (97, 1000), (1000, 97)]
SINK_EXTRA = {"plain": {}, "all": dict(window=(32, 8), softcap=5.0, alibi="bh")}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
@pytest.mark.parametrize("extra", list(SINK_EXTRA))
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("heads", HEADS, ids=lambda h: f"h{h[0]}_{h[1]}")
@pytest.mark.parametrize("Sq,Sk", SINK_LENS, ids=_lens_ids(SINK_LENS))
def test_sinks(Sq, Sk, heads, causal, extra, dtype, kernel):
    """sinks (Hq,) fp32, alone and with window + softcap + ALiBi; causal_offset = Sk - Sq + 2 (not the
    default: the diagonal follows causal_offset)."""
    attn_case(kernel, Sq, Sk, heads, 128, dtype, offset=Sk - Sq + 2, causal=causal, sinks=True, **SINK_EXTRA[extra])


# (Sq, Sk, causal_offset, causal, options): each has rows that see no key
DEAD_CASES = {
    "causal-offset-5": (16, 97, -5, True, {}),                                              # rows 0..4
    "causal-offset-40-cap": (97, 1000, -40, True, dict(softcap=5.0)),                       # rows 0..39
    "causal-every-row": (1, 1025, -1, True, dict(alibi="h")),                               # d_0 = -1: the only row
    "window-misses-all": (97, 97, -10, False, dict(window=(2, 2), softcap=5.0, alibi="bh")),  # rows 0..7
    "window-misses-decode": (16, 1000, -20, False, dict(window=(3, 5), alibi="h")),          # rows 0..14
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", list(DEAD_CASES))
def test_sinks_rows_that_see_no_key(case, kernel):
    """A row that sees no key (negative causal_offset, or a window that misses every key): out 0 and
    lse = the head's sink."""
    Sq, Sk, offset, causal, extra = DEAD_CASES[case]
    no_key = attn_case(kernel, Sq, Sk, (8, 2), 64, FP16, offset=offset, causal=causal, sinks=True, **extra)
    assert no_key.any(), f"{case}: no row without keys, the case tests nothing"


# Windows wider than the keys that still bind, because the diagonal lies far outside them (the
# binding must not read "wider than L + S" as "no limit"): a right side of 600 with the diagonal
# 700 keys before key 0, a left side of 600 with it 700 past the keys, and a right side that cuts
# through the keys (offset -650: j <= i - 50).
FAR_CASES = {
    "right-600-offset-700": (7, 17, -700, (-1, 600)),        # no row sees a key
    "left-600-offset+700": (7, 17, 700, (600, -1)),          # no row sees a key
    "right-600-offset-650": (7, 97, -650, (-1, 600)),        # rows see keys 0 .. i - 50: none (i < 7)
    "right-700-offset-650": (16, 97, -650, (-1, 700)),       # j <= i + 50
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", list(FAR_CASES))
def test_window_far_from_the_diagonal(case, kernel):
    Sq, Sk, offset, window = FAR_CASES[case]
    attn_case(kernel, Sq, Sk, (8, 2), 64, FP16, offset=offset, window=window, sinks=True)


# ---------------------------------------------------------------------------------------------
# 5. the options with attn_mask and with seqlens_k
# ---------------------------------------------------------------------------------------------
MASK_LENS = [(16, 97), (97, 1000), (1000, 97)]
MASK_CASES = [("bool", False), ("float", False), (None, True), ("bool", True), ("float", True)]
MASK_OPTS = {"w24_8": dict(window=(24, 8)), "all": dict(window=(24, 8), softcap=10.0, alibi="bh", sinks=True)}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("opts", list(MASK_OPTS))
@pytest.mark.parametrize("mask,ragged", MASK_CASES,
                         ids=[f"mask_{m}" + ("-seqlens_k" if r else "") for m, r in MASK_CASES])
@pytest.mark.parametrize("Sq,Sk", MASK_LENS, ids=_lens_ids(MASK_LENS))
def test_options_with_mask_and_seqlens_k(Sq, Sk, mask, ragged, opts, causal, dtype, kernel):
    """attention() with a bool (B, 1, Sq, Sk) or additive float mask, and/or seqlens_k = [1, Sk // 2, Sk]
    (int32 on the device; per row the diagonal is causal_offset + lens[b] - Sk, causal_offset = Sk - Sq)."""
    lens = [1, Sk // 2, Sk] if ragged else None
    attn_case(kernel, Sq, Sk, (8, 2), 64, dtype, B=3, causal=causal, mask=mask, lens=lens, **MASK_OPTS[opts])


# ---------------------------------------------------------------------------------------------
# 6. flash_attn_with_kvcache
# ---------------------------------------------------------------------------------------------
KV_OPTS = {
    "w16_0": dict(window=(16, 0)),
    "w16_0-cap30": dict(window=(16, 0), softcap=30.0),
    "alibi_h": dict(alibi="h"),
    "w100_0-cap5-alibi_bh": dict(window=(100, 0), softcap=5.0, alibi="bh"),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("opts", list(KV_OPTS))
@pytest.mark.parametrize("Lq", [1, 4])
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
def test_kvcache(dtype, Lq, opts, kernel):
    """Rows of 0, 37 and 1000 cached keys plus Lq new ones, causal, with a window, softcap and ALiBi."""
    kvcache_case(kernel, dtype, Lq, **KV_OPTS[opts])


# ---------------------------------------------------------------------------------------------
# 7. long caches: the decode kernel splits the key range
# ---------------------------------------------------------------------------------------------
LONG_OPTS = {
    "w4096_0": dict(window=(4096, 0)),
    "sinks": dict(sinks=True),
    "cap30": dict(softcap=30.0),
    "all": dict(window=(4096, 0), softcap=30.0, alibi="h", sinks=True),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("opts", list(LONG_OPTS))
@pytest.mark.parametrize("dtype", [FP16, BF16], ids=_dt_id)
def test_long_cache(dtype, opts, kernel):
    """One query against 33000 keys (B=1, 8 query heads on 2 kv heads, D=128), causal."""
    attn_case(kernel, 1, 33000, (8, 2), 128, dtype, B=1, causal=True, **LONG_OPTS[opts])


# ---------------------------------------------------------------------------------------------
# 8. key tiles outside the window are skipped, not masked
# ---------------------------------------------------------------------------------------------
# (api, Sq, Sk, window, causal, causal_offset (None: Sk - Sq, flash_attn_func's))
SKIP_CASES = {
    "func-1x4096-w1000_0-causal": ("func", 1, 4096, (1000, 0), True, None),
    "func-1024x4096-w256_0-causal": ("func", 1024, 4096, (256, 0), True, None),
    "attention-1x4096-offset2000-w1000_300": ("attention", 1, 4096, (1000, 300), False, 2000),
    # 16 rows of one head in one decode block: the right limit of its first row falls inside a tile
    "attention-16x4096-offset1990-w1000_301": ("attention", 16, 4096, (1000, 301), False, 1990),
    "attention-1024x4096-offset0-w256_256": ("attention", 1024, 4096, (256, 256), False, 0),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", list(SKIP_CASES))
def test_tiles_outside_the_window_are_skipped_not_masked(case, kernel):
    """The oracle on clean inputs; the kernel on copies whose keys and values lie NaN more than 512 keys
    below every row's window start (j < min_i d_i - left - 512) and past every row's last key
    (j > max_i d_i + right + 512, right = 0 with causal). A tile of them that is read, even masked,
    gives NaN (0 * NaN)."""
    api, Sq, Sk, window, causal, off = SKIP_CASES[case]
    B, Hq, Hkv, D, dtype = 2, 8, 2, 128, FP16
    co = Sk - Sq if off is None else off
    left, right = window
    right = 0 if causal else right
    lo = max(0, co - left - 512) if left >= 0 else 0                    # keys j < lo are poisoned
    hi = min(Sk, co + Sq - 1 + right + 513) if right >= 0 else Sk       # keys j >= hi are poisoned
    assert lo > 0 or hi < Sk, f"{case}: nothing to poison"
    if api == "func":
        q, k, v = blhd(B, Sq, Hq, D, dtype), blhd(B, Sk, Hkv, D, dtype), blhd(B, Sk, Hkv, D, dtype, 1.0)
        kdim = 1
    else:
        q, k, v = bhld(B, Hq, Sq, D, dtype), bhld(B, Hkv, Sk, D, dtype), bhld(B, Hkv, Sk, D, dtype, 1.0)
        kdim = 2
    kp, vp = k.clone(), v.clone()
    for t in (kp, vp):
        t.narrow(kdim, 0, lo).fill_(NAN)
        t.narrow(kdim, hi, Sk - hi).fill_(NAN)
    if api == "func":
        qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        fn = lambda: flashmin_nn.flash_attn_func(q, kp, vp, causal=causal, window_size=window, return_lse=True)
        out, lse = run(kernel, fn, qh, kp.transpose(1, 2), vp.transpose(1, 2))
        out = out.transpose(1, 2)
        win = fa_window(window, Sk)
    else:
        qh, kh, vh = q, k, v
        fn = lambda: flashmin_nn.attention(q, kp, vp, is_causal=causal, causal_offset=co, window_size=window,
                                           return_lse=True)
        out, lse = run(kernel, fn, q, kp, vp)
        win = window
    ref, ref_lse, no_key, vis = expected(qh, kh, vh, [co] * B, causal=causal, window=win)
    check(kernel, out, lse, ref, ref_lse, no_key, dtype=dtype, torch_out=sdpa(qh, kh, vh, vis),
          what=f"{kernel} {case}: keys [0, {lo}) and [{hi}, {Sk}) NaN")


# ---------------------------------------------------------------------------------------------
# 9. "auto" serves every option
# ---------------------------------------------------------------------------------------------
# (api, Sq, Sk, dtype): "auto" picks decode for Sq <= 16, a prefill kernel for long queries, minimal for fp32
AUTO_CASES = {
    "func-1x2000-fp16": ("func", 1, 2000, FP16),
    "func-300x300-bf16": ("func", 300, 300, BF16),
    "func-40x300-fp32": ("func", 40, 300, FP32),
    "attention-1x2000-fp16": ("attention", 1, 2000, FP16),
    "attention-300x300-bf16": ("attention", 300, 300, BF16),
    "kvcache-4-fp16": ("kvcache", 4, None, FP16),
}


@pytest.mark.parametrize("case", list(AUTO_CASES))
def test_auto_serves_every_option(case):
    """No use_kernel: window, softcap and ALiBi (and attention()'s sinks) are served, and right."""
    assert flashmin_nn.current_kernel() == "auto"
    api, Sq, Sk, dtype = AUTO_CASES[case]
    opts = dict(window=(64, 0), softcap=20.0, alibi="bh")
    if api == "func":
        func_case("auto", Sq, Sk, (8, 2), 128, dtype, causal=True, **opts)
    elif api == "attention":
        attn_case("auto", Sq, Sk, (8, 2), 128, dtype, causal=True, sinks=True, **opts)
    else:
        kvcache_case("auto", dtype, Sq, **opts)
