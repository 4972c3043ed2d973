"""flash_attn 2.8's options on the CPU path (window_size, softcap, alibi_slopes, and attention()'s sinks),
through flash_attn_func, flash_attn_with_kvcache, flash_attn_varlen_func and attention(), against an
oracle written here from the definitions (float64, one (b, h) score matrix at a time). It shares no
code with flashmin_nn.reference or tests/helpers.py, so a bug there cannot hide a bug here.

Definitions (d_i: the diagonal key of query row i): query i sees key j iff d_i - left <= j <= d_i + right
(a negative side: no limit; flash_attn reads a side >= Sk as no limit) and j <= d_i if causal; a
scaled score s becomes softcap * tanh(s / softcap) (softcap > 0), then gets -slope[h] * |j - d_i|;
a sink is one more logit per head with no value; rows that see nothing give 0 and lse = -inf.
"""
import math

import pytest
import torch

import flashmin_nn

INF = math.inf
D = 16
LENS = [(1, 1), (17, 17), (97, 97), (1, 17), (17, 97), (97, 17)]   # (Sq, Sk): equal, Sq < Sk, Sq > Sk
HEADS = [(4, 2), (4, 1)]                                            # (Hq, Hkv): GQA, MQA
B = 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: intra-op threads only add contention on a loaded machine (47 s -> 5 s here)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------
def oracle(q, k, v, offsets, *, lens=None, causal=False, window=(-1, -1), softcap=0.0, alibi=None, sinks=None,
           scale=None):
    """q (B, Hq, Sq, D), k/v (B, Hkv, Sk, D). Query i of batch b: diagonal d_i = i + offsets[b]; it sees keys
    j < lens[b] (None: Sk) with the window taken as given (negative side: no limit). Query head h reads kv
    head h // (Hq // Hkv). Returns out (B, Hq, Sq, Dv) and lse (B, Hq, Sq), float64."""
    nb, Hq, Sq, Dq = q.shape
    Hkv, Sk, Dv = k.shape[1], k.shape[2], v.shape[3]
    scale = 1.0 / math.sqrt(Dq) if scale is None else scale
    out = torch.zeros(nb, Hq, Sq, Dv, dtype=torch.float64)
    lse = torch.full((nb, Hq, Sq), -INF, dtype=torch.float64)
    left, right = window
    for b in range(nb):
        n = Sk if lens is None else int(lens[b])
        i = torch.arange(Sq, dtype=torch.float64)[:, None]
        j = torch.arange(n, dtype=torch.float64)[None, :]
        d = i + offsets[b]                                           # (Sq, 1)
        seen = torch.ones(Sq, n, dtype=torch.bool)
        if causal:
            seen &= j <= d
        if left >= 0:
            seen &= j >= d - left
        if right >= 0:
            seen &= j <= d + right
        for h in range(Hq):
            g = h // (Hq // Hkv)
            s = (q[b, h].double() @ k[b, g, :n].double().T) * scale  # (Sq, n)
            if softcap > 0:
                s = softcap * torch.tanh(s / softcap)
            if alibi is not None:
                slope = float(alibi[h] if alibi.dim() == 1 else alibi[b, h])
                s = s - slope * (j - d).abs()
            s = s.masked_fill(~seen, -INF)
            vals = v[b, g, :n].double()
            if sinks is not None:
                s = torch.cat([s, torch.full((Sq, 1), float(sinks[h]), dtype=torch.float64)], dim=1)
                vals = torch.cat([vals, torch.zeros(1, Dv, dtype=torch.float64)])
            if s.shape[1] == 0:
                continue
            m = s.amax(dim=1, keepdim=True)                          # (Sq, 1)
            live = m > -INF
            p = torch.exp(s - torch.where(live, m, torch.zeros_like(m)))
            den = p.sum(dim=1, keepdim=True)
            o = (p @ vals) / torch.where(live, den, torch.ones_like(den))
            out[b, h] = torch.where(live, o, torch.zeros_like(o))
            lse[b, h] = torch.where(live, m + torch.log(den), torch.full_like(m, -INF))[:, 0]
    return out, lse


def fa_window(window, seqlen_k):
    """flash_attn's reading of window_size: a side >= seqlen_k (or negative) has no limit, and the
    kernel (set_params_fprop) runs a one-sided window's free side as seqlen_k: for (left, -1) that
    binds where a row's diagonal lies before key 0 (more queries than keys). The free left side of
    (-1, right) at seqlen_k never binds (d_i - seqlen_k < 0), so it stays -1 here."""
    left, right = (-1 if w < 0 or w >= seqlen_k else w for w in window)
    if left >= 0 and right < 0:
        right = seqlen_k
    return left, right


def check(out, lse, ref, ref_lse, what=""):
    """out (B, H, L, D) against the oracle: finite, 0 on rows that see nothing, max abs error
    <= 1e-5 x max|ref|; lse float32, -inf exactly where the oracle's is, else within 2e-5."""
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: {(~torch.isfinite(out)).sum().item()} non-finite outputs"
    dead = torch.isneginf(ref_lse)
    assert (out[dead] == 0).all(), f"{what}: rows that see no key must be 0"
    atol = 1e-5 * max(ref.abs().max().item(), 1e-3)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=atol, msg=lambda m: f"{what}: {m}")
    if lse is not None:
        assert lse.dtype == torch.float32 and lse.shape == ref_lse.shape, f"{what}: lse {lse.dtype} {tuple(lse.shape)}"
        assert not torch.isnan(lse).any(), f"{what}: lse has NaN"
        assert torch.equal(torch.isneginf(lse), dead), f"{what}: lse must be -inf exactly on rows that see no key"
        torch.testing.assert_close(lse.double(), ref_lse, rtol=2e-6, atol=2e-5, msg=lambda m: f"{what}: lse {m}")


def blhd(nb, S, H, scale=1.5):
    return torch.randn(nb, S, H, D) * scale                           # fresh N(0, scale^2), float32


def slopes(kind, nb, Hq):
    if kind is None:
        return None
    return (torch.rand(Hq) if kind == "h" else torch.rand(nb, Hq)) * 0.5 + 0.05   # float32


def run_func(Sq, Sk, Hq, Hkv, *, causal, window=(-1, -1), softcap=0.0, alibi=None):
    """flash_attn_func against the oracle; returns the oracle's lse (for the callers' extra checks)."""
    q, k, v = blhd(B, Sq, Hq), blhd(B, Sk, Hkv), blhd(B, Sk, Hkv, 1.0)
    out, lse = flashmin_nn.flash_attn_func(q, k, v, causal=causal, window_size=window, softcap=softcap,
                                           alibi_slopes=alibi, return_lse=True)
    ref, ref_lse = oracle(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), [Sk - Sq] * B, causal=causal,
                          window=fa_window(window, Sk), softcap=softcap, alibi=alibi)
    what = f"Sq={Sq} Sk={Sk} Hq={Hq} Hkv={Hkv} causal={causal} window={window} softcap={softcap}"
    check(out.transpose(1, 2), lse, ref, ref_lse, what)
    return ref_lse


# ---------------------------------------------------------------------------------------------
# 1. window_size, 2. softcap, 3. alibi_slopes (flash_attn_func; out and lse)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("window", [(0, 0), (3, 0), (5, 7), (-1, 4), (16, -1), (2, 3)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("Sq,Sk", LENS)
def test_window(Sq, Sk, heads, causal, window):
    run_func(Sq, Sk, *heads, causal=causal, window=window)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("Sq,Sk", LENS)
def test_window_side_as_wide_as_the_keys_is_no_limit(Sq, Sk, heads, causal):
    q, k, v = blhd(B, Sq, heads[0]), blhd(B, Sk, heads[1]), blhd(B, Sk, heads[1], 1.0)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    for wide, same in (((Sk, -1), (-1, -1)), ((-1, Sk), (-1, -1)), ((Sk + 3, 10**6), (-1, -1)),
                       ((Sk, 2), (-1, 2)), ((3, Sk + 1), (3, -1))):
        out, lse = flashmin_nn.flash_attn_func(q, k, v, causal=causal, window_size=wide, return_lse=True)
        base, base_lse = flashmin_nn.flash_attn_func(q, k, v, causal=causal, window_size=same, return_lse=True)
        torch.testing.assert_close(out, base, rtol=0, atol=1e-6)
        torch.testing.assert_close(lse, base_lse, rtol=0, atol=1e-6)
        ref, ref_lse = oracle(qt, kt, vt, [Sk - Sq] * B, causal=causal, window=fa_window(same, Sk))
        check(out.transpose(1, 2), lse, ref, ref_lse, f"window={wide} as {same}")


@pytest.mark.parametrize("window", [(0, 0), (2, 3), (5, 0)])
@pytest.mark.parametrize("causal", [False, True])
def test_window_rows_that_see_no_key_get_zeros(causal, window):
    ref_lse = run_func(97, 17, 4, 2, causal=causal, window=window)    # d_i = i - 80: early rows see nothing
    assert torch.isneginf(ref_lse).any() and torch.isfinite(ref_lse).any()


# flash_attn 2.8's set_params_fprop gives a one-sided window's free side the value seqlen_k: (16, -1)
# runs as (16, Sk), so with Sq > Sk rows i < Sq - Sk - 1 stop at key i + 2 Sk - Sq (rows 0..62 see
# nothing for Sq=97, Sk=17). flashmin does what the kernel does.
def test_one_sided_window_with_more_queries_than_keys_as_the_flash_attn_kernel_runs_it():
    Sq, Sk = 97, 17
    q, k, v = blhd(1, Sq, 4), blhd(1, Sk, 2), blhd(1, Sk, 2, 1.0)
    out, lse = flashmin_nn.flash_attn_func(q, k, v, window_size=(16, -1), return_lse=True)
    ref, ref_lse = oracle(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), [Sk - Sq], window=(16, Sk))
    check(out.transpose(1, 2), lse, ref, ref_lse, "window (16, -1) as flash_attn's kernel")


@pytest.mark.parametrize("window", [(-1, -1), (4, 2)])
@pytest.mark.parametrize("softcap", [0.5, 30.0])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("Sq,Sk", LENS)
def test_softcap(Sq, Sk, heads, causal, softcap, window):
    run_func(Sq, Sk, *heads, causal=causal, window=window, softcap=softcap)


@pytest.mark.parametrize("extra", [{}, dict(window=(6, 3)), dict(window=(5, 0), softcap=5.0)],
                         ids=["plain", "win", "win_cap"])
@pytest.mark.parametrize("kind", ["h", "bh"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("Sq,Sk", LENS)
def test_alibi(Sq, Sk, heads, causal, kind, extra):
    run_func(Sq, Sk, *heads, causal=causal, alibi=slopes(kind, B, heads[0]), **extra)


def test_options_are_not_ignored():
    """Each option changes the result on these inputs (so passing tests above compare something)."""
    q, k, v = blhd(B, 17, 4), blhd(B, 17, 2), blhd(B, 17, 2, 1.0)
    base = flashmin_nn.flash_attn_func(q, k, v)
    for kw in (dict(window_size=(3, 2)), dict(softcap=0.5), dict(alibi_slopes=slopes("h", B, 4))):
        assert (flashmin_nn.flash_attn_func(q, k, v, **kw) - base).abs().max() > 1e-2, kw


# ---------------------------------------------------------------------------------------------
# 4. sinks (and the other options) through attention()
# ---------------------------------------------------------------------------------------------
def bhld(nb, H, L, scale=1.5):
    return torch.randn(nb, H, L, D) * scale


@pytest.mark.parametrize("extra", [{}, dict(window_size=(4, 1), softcap=5.0, alibi="bh")], ids=["plain", "all"])
@pytest.mark.parametrize("with_sinks", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("Sq,Sk", LENS)
def test_attention_sinks_and_options(Sq, Sk, heads, causal, with_sinks, extra):
    Hq, Hkv = heads
    q, k, v = bhld(B, Hq, Sq), bhld(B, Hkv, Sk), bhld(B, Hkv, Sk, 1.0)
    sinks = torch.randn(Hq) * 2 if with_sinks else None
    kw = dict(extra)
    alibi = slopes(kw.pop("alibi", None), B, Hq)
    offset = Sk - Sq + 2                                # not the default: the diagonal follows causal_offset
    out, lse = flashmin_nn.attention(q, k, v, is_causal=causal, causal_offset=offset, return_lse=True,
                                     sinks=sinks, alibi_slopes=alibi, **kw)
    ref, ref_lse = oracle(q, k, v, [offset] * B, causal=causal, window=kw.get("window_size", (-1, -1)),
                          softcap=kw.get("softcap", 0.0), alibi=alibi, sinks=sinks)
    check(out, lse, ref, ref_lse, f"attention Sq={Sq} Sk={Sk} causal={causal} sinks={with_sinks} {extra}")


@pytest.mark.parametrize("offset", [-200, -3])
def test_attention_sinks_rows_that_see_no_key(offset):
    Hq, Hkv, Sq, Sk = 4, 2, 17, 13
    q, k, v = bhld(B, Hq, Sq), bhld(B, Hkv, Sk), bhld(B, Hkv, Sk, 1.0)
    sinks = torch.randn(Hq) * 2
    out, lse = flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=offset, return_lse=True, sinks=sinks)
    ref, ref_lse = oracle(q, k, v, [offset] * B, causal=True, sinks=sinks)
    check(out, lse, ref, ref_lse, f"sinks, causal_offset={offset}")
    dead = slice(0, min(Sq, -offset))                   # rows i < -offset see no key
    assert torch.isfinite(out).all() and (out[:, :, dead] == 0).all()
    torch.testing.assert_close(lse[:, :, dead], sinks.view(1, Hq, 1).expand(B, Hq, dead.stop), rtol=0, atol=1e-6)


@pytest.mark.parametrize("causal,offset", [(False, 0), (True, 0), (True, -3), (True, -200)])
def test_attention_sink_of_minus_inf_is_no_sink(causal, offset):
    q, k, v = bhld(B, 4, 17), bhld(B, 1, 13), bhld(B, 1, 13, 1.0)
    out, lse = flashmin_nn.attention(q, k, v, is_causal=causal, causal_offset=offset, return_lse=True,
                                     sinks=torch.full((4,), -INF))
    base, base_lse = flashmin_nn.attention(q, k, v, is_causal=causal, causal_offset=offset, return_lse=True)
    torch.testing.assert_close(out, base, rtol=0, atol=1e-6)
    torch.testing.assert_close(lse, base_lse, rtol=0, atol=1e-6)
    ref, ref_lse = oracle(q, k, v, [offset] * B, causal=causal)
    check(out, lse, ref, ref_lse, f"sink -inf, causal={causal} offset={offset}")


# ---------------------------------------------------------------------------------------------
# 6. flash_attn_with_kvcache: per-row lengths, new keys, NaN in the unused slots
# ---------------------------------------------------------------------------------------------
KV_OPTS = [dict(causal=False), dict(causal=True), dict(causal=True, window=(6, 0)), dict(window=(3, 2)),
           dict(causal=True, alibi="h"), dict(causal=True, window=(8, 0), alibi="bh"),
           dict(window=(5, 1), softcap=10.0, alibi="bh")]


@pytest.mark.parametrize("opts", KV_OPTS, ids=lambda o: "-".join(f"{a}{b}" for a, b in o.items()))
@pytest.mark.parametrize("Lq", [1, 2, 3])
@pytest.mark.parametrize("heads", HEADS)
def test_kvcache_per_row_lengths(heads, Lq, opts):
    Hq, Hkv = heads
    nb, S_max, Lnew = 3, 40, 2
    seqlens = torch.tensor([5, 17, 30], dtype=torch.int32)
    kc, vc = blhd(nb, S_max, Hkv), blhd(nb, S_max, Hkv, 1.0)
    for b, s0 in enumerate(seqlens.tolist()):
        kc[b, s0:] = float("nan")                       # unused slots (and those the new keys go to)
        vc[b, s0:] = float("nan")
    kc0 = kc.clone()
    q, kn, vn = blhd(nb, Lq, Hq), blhd(nb, Lnew, Hkv), blhd(nb, Lnew, Hkv, 1.0)
    causal, window, softcap = opts.get("causal", False), opts.get("window", (-1, -1)), opts.get("softcap", 0.0)
    alibi = slopes(opts.get("alibi"), nb, Hq)
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=seqlens, causal=causal,
                                                   window_size=window, softcap=softcap, alibi_slopes=alibi,
                                                   return_softmax_lse=True)
    for b, s0 in enumerate(seqlens.tolist()):           # the write: new keys at s0.., the rest untouched
        assert torch.equal(kc[b, :s0], kc0[b, :s0]) and torch.equal(kc[b, s0:s0 + Lnew], kn[b])
        assert torch.equal(vc[b, s0:s0 + Lnew], vn[b]) and torch.isnan(kc[b, s0 + Lnew:]).all()
    lens = (seqlens + Lnew).tolist()
    ref, ref_lse = oracle(q.transpose(1, 2), kc.transpose(1, 2), vc.transpose(1, 2), [n - Lq for n in lens],
                          lens=lens, causal=causal, window=fa_window(window, S_max), softcap=softcap, alibi=alibi)
    check(out.transpose(1, 2), lse, ref, ref_lse, f"kvcache Lq={Lq} heads={heads} {opts}")


# ---------------------------------------------------------------------------------------------
# 7. flash_attn_varlen_func: each packed sequence against the oracle on it alone
# ---------------------------------------------------------------------------------------------
VARLEN_OPTS = [dict(causal=True), dict(causal=True, window=(8, 0), alibi="bh"),
               dict(causal=True, window=(6, 2), alibi="h"), dict(window=(3, 4), softcap=5.0, alibi="bh")]


@pytest.mark.parametrize("opts", VARLEN_OPTS, ids=lambda o: "-".join(f"{a}{b}" for a, b in o.items()))
@pytest.mark.parametrize("lq,lk", [([1, 17, 5], [9, 17, 40]), ([20, 3, 5], [4, 17, 40])])
@pytest.mark.parametrize("heads", HEADS)
def test_varlen_sequences(heads, lq, lk, opts):
    Hq, Hkv = heads
    nb = len(lq)
    cq = torch.tensor([0] + lq, dtype=torch.int32).cumsum(0).to(torch.int32)
    ck = torch.tensor([0] + lk, dtype=torch.int32).cumsum(0).to(torch.int32)
    q, k, v = blhd(1, sum(lq), Hq)[0], blhd(1, sum(lk), Hkv)[0], blhd(1, sum(lk), Hkv, 1.0)[0]
    causal, window, softcap = opts.get("causal", False), opts.get("window", (-1, -1)), opts.get("softcap", 0.0)
    alibi = slopes(opts.get("alibi"), nb, Hq)
    out, lse, _ = flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lq), max(lk), causal=causal,
                                                     window_size=window, softcap=softcap, alibi_slopes=alibi,
                                                     return_attn_probs=True)
    assert out.shape == q.shape and lse.shape == (Hq, sum(lq))
    for b in range(nb):
        qs, ks = slice(int(cq[b]), int(cq[b + 1])), slice(int(ck[b]), int(ck[b + 1]))
        a = None if alibi is None else (alibi if alibi.dim() == 1 else alibi[b:b + 1])
        ref, ref_lse = oracle(q[None, qs].transpose(1, 2), k[None, ks].transpose(1, 2), v[None, ks].transpose(1, 2),
                              [lk[b] - lq[b]], causal=causal, window=fa_window(window, max(lk)), softcap=softcap,
                              alibi=a)
        check(out[None, qs].transpose(1, 2), lse[None, :, qs], ref, ref_lse,
              f"varlen seq {b} ({lq[b]}, {lk[b]}) {opts}")


# ---------------------------------------------------------------------------------------------
# 8. bad option values: ValueError/TypeError naming the argument, never printing a tensor
# ---------------------------------------------------------------------------------------------
def _call(fn, **kw):
    Hq, Hkv, Sq, Sk = 4, 2, 5, 7
    if fn == "func":
        return flashmin_nn.flash_attn_func(blhd(B, Sq, Hq), blhd(B, Sk, Hkv), blhd(B, Sk, Hkv), **kw)
    if fn == "attention":
        return flashmin_nn.attention(bhld(B, Hq, Sq), bhld(B, Hkv, Sk), bhld(B, Hkv, Sk), **kw)
    if fn == "varlen":
        cq, ck = torch.tensor([0, 2, 5], dtype=torch.int32), torch.tensor([0, 3, 7], dtype=torch.int32)
        return flashmin_nn.flash_attn_varlen_func(blhd(1, 5, Hq)[0], blhd(1, 7, Hkv)[0], blhd(1, 7, Hkv)[0],
                                                  cq, ck, 3, 4, **kw)
    kc, vc = blhd(B, 12, Hkv), blhd(B, 12, Hkv)
    kc0, vc0 = kc.clone(), vc.clone()
    try:
        return flashmin_nn.flash_attn_with_kvcache(blhd(B, 2, Hq), kc, vc, blhd(B, 2, Hkv), blhd(B, 2, Hkv),
                                                   cache_seqlens=torch.tensor([3, 6], dtype=torch.int32), **kw)
    finally:   # a refused call must not have written the new keys into the cache
        assert torch.equal(kc, kc0) and torch.equal(vc, vc0), "the cache was written before the error"


BAD = [
    (dict(alibi_slopes=torch.rand(4, dtype=torch.float64)), "alibi_slopes"),
    (dict(alibi_slopes=torch.rand(5)), "alibi_slopes"),
    (dict(alibi_slopes=torch.rand(B, 4, 1)), "alibi_slopes"),
    (dict(alibi_slopes=torch.rand(3, 4)), "alibi_slopes"),
    (dict(alibi_slopes=[0.1, 0.2, 0.3, 0.4]), "alibi_slopes"),
    (dict(softcap=float("nan")), "softcap"),
    (dict(softcap="x"), "softcap"),
    (dict(window_size=(1,)), "window_size"),
    (dict(window_size=(1.5, 2)), "window_size"),
    (dict(window_size=3), "window_size"),
]
SINKS_BAD = [(dict(sinks=torch.zeros(3)), "sinks"), (dict(sinks=[0.0, 0.0, 0.0, 0.0]), "sinks"),
             (dict(sinks=torch.zeros(4, dtype=torch.int32)), "sinks"), (dict(sinks=torch.zeros(1, 4)), "sinks")]


@pytest.mark.parametrize("fn,kw,name", [(fn, kw, name) for fn in ("func", "kvcache", "varlen", "attention")
                                        for kw, name in BAD] + [("attention", kw, name) for kw, name in SINKS_BAD])
def test_bad_option_values_raise_naming_the_argument(fn, kw, name):
    with pytest.raises((ValueError, TypeError)) as info:
        _call(fn, **kw)
    msg = str(info.value)
    assert name in msg, f"{fn}({kw}): message {msg!r} does not name {name}"
    assert "tensor(" not in msg, f"{fn}: message prints a tensor: {msg!r}"


# ---------------------------------------------------------------------------------------------
# attention(seqlens_k=): per-row key counts read on the device
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_attention_seqlens_k_reads_only_each_rows_keys(causal):
    Hq, Hkv, Sq, Sk = 4, 2, 3, 40
    q, k, v = bhld(B, Hq, Sq), bhld(B, Hkv, Sk), bhld(B, Hkv, Sk, 1.0)
    lens = [7, 33]
    for b, n in enumerate(lens):
        k[b, :, n:] = v[b, :, n:] = float("nan")       # past each row's keys: never read
    out, lse = flashmin_nn.attention(q, k, v, is_causal=causal, causal_offset=Sk - Sq, return_lse=True,
                                     seqlens_k=torch.tensor(lens, dtype=torch.int32))
    ref, ref_lse = oracle(q, k, v, [n - Sq for n in lens], lens=lens, causal=causal)
    check(out, lse, ref, ref_lse, f"seqlens_k={lens} causal={causal}")
    # a length past the keys is clamped to them (no read past the tensor), int64 is accepted
    k2, v2 = bhld(B, Hkv, Sk), bhld(B, Hkv, Sk, 1.0)
    big = flashmin_nn.attention(q, k2, v2, seqlens_k=torch.tensor([Sk + 5, Sk], dtype=torch.int64))
    torch.testing.assert_close(big, flashmin_nn.attention(q, k2, v2), rtol=0, atol=1e-6)
    # int32 goes in as it is and is clamped where it is read: past the keys, and below zero (no key)
    odd = flashmin_nn.attention(q, k2, v2, seqlens_k=torch.tensor([Sk + 5, -3], dtype=torch.int32))
    torch.testing.assert_close(odd[:1], flashmin_nn.attention(q[:1], k2[:1], v2[:1]), rtol=0, atol=1e-6)
    assert torch.equal(odd[1:], torch.zeros_like(odd[1:]))
    for bad, pat in ((torch.tensor([1, 2, 3], dtype=torch.int32), r"seqlens_k.*\(2,\)"), ([1, 2], "seqlens_k"),
                     (torch.tensor([1.0, 2.0]), "seqlens_k.*int32")):
        with pytest.raises(ValueError, match=pat):
            flashmin_nn.attention(q, k2, v2, seqlens_k=bad)
