"""flash_attn_with_kvcache's rotary embedding (rotary_cos, rotary_sin, rotary_interleaved) and
cache_leftpad, on the CPU, against a float64 oracle written here from flash_attn 2.8's meaning:

- rotary: the first rotary_dim columns of q and of the new keys turn by the angle of their
  position, a column pair read as one complex number (pairs (2c, 2c + 1) when interleaved, GPT-J;
  (c, c + rotary_dim / 2) otherwise, GPT-NeoX) times cos + i sin. New key j of row b sits at
  position cache_seqlens[b] + j; query i at cache_seqlens[b] + i with causal or a local window, else
  every query at cache_seqlens[b]. The cache receives the rotated keys.
- cache_leftpad[b]: row b's cache starts there; keys before it are not attended to. Positions stay
  absolute: the causal diagonal of query i is key i + len_b - Lq, where len_b = cache_seqlens[b] +
  Lnew, and the window and ALiBi count from it.
"""
import math

import pytest
import torch

import flashmin_nn

D = 16


def turn(x, cos, sin, pos, interleaved):
    """x (L, H, D) float64, its first 2 * cos.shape[1] columns turned by the angles at positions pos (L,)."""
    half = cos.shape[1]
    x = x.clone()
    if interleaved:
        z = torch.complex(x[..., 0:2 * half:2], x[..., 1:2 * half:2])
    else:
        z = torch.complex(x[..., :half], x[..., half:2 * half])
    w = torch.complex(cos[pos].double(), sin[pos].double()).unsqueeze(1)     # (L, 1, half)
    z = z * w
    if interleaved:
        x[..., 0:2 * half:2], x[..., 1:2 * half:2] = z.real, z.imag
    else:
        x[..., :half], x[..., half:2 * half] = z.real, z.imag
    return x


def oracle(q, kc, vc, lens, starts, *, causal, window=(-1, -1), alibi=None):
    """q (B, Lq, Hq, D), caches (B, S, Hkv, D) float64 after the write; row b attends to keys
    [starts[b], lens[b]). Returns (B, Lq, Hq, D)."""
    B, Lq, Hq, _ = q.shape
    Hkv = kc.shape[2]
    out = torch.zeros(B, Lq, Hq, D, dtype=torch.float64)
    for b in range(B):
        n = lens[b]
        i = torch.arange(Lq).view(-1, 1)
        j = torch.arange(n).view(1, -1)
        d = i + n - Lq
        seen = j >= starts[b]
        if causal:
            seen = seen & (j <= d)
        if window[0] >= 0:
            seen = seen & (j >= d - window[0])
        if window[1] >= 0:
            seen = seen & (j <= d + window[1])
        for h in range(Hq):
            g = h // (Hq // Hkv)
            s = (q[b, :, h].double() @ kc[b, :n, g].double().T) / math.sqrt(D)
            if alibi is not None:
                s = s - float(alibi[b, h] if alibi.dim() == 2 else alibi[h]) * (j - d).abs()
            s = s.masked_fill(~seen, -math.inf)
            live = seen.any(1, keepdim=True)
            p = torch.softmax(torch.where(live, s, torch.zeros_like(s)), dim=1) * live
            vals = vc[b, :n, g].double()
            vals = torch.where(seen.any(0).view(-1, 1), vals, torch.zeros_like(vals))   # keys nobody sees: unread
            out[b, :, h] = p @ vals
    return out


def angles(S, half, dtype=torch.float32):
    a = torch.rand(S, half, dtype=torch.float64) * 2 * math.pi
    return a.cos().to(dtype), a.sin().to(dtype)


def case(B=3, Lq=2, Hq=4, Hkv=2, S=40, Lnew=2, seqlens=(5, 17, 30), seed=0):
    torch.manual_seed(seed)
    q = torch.randn(B, Lq, Hq, D)
    kc, vc = torch.randn(B, S, Hkv, D), torch.randn(B, S, Hkv, D)
    kn, vn = torch.randn(B, Lnew, Hkv, D), torch.randn(B, Lnew, Hkv, D)
    return q, kc, vc, kn, vn, torch.tensor(seqlens, dtype=torch.int32)


@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("mode", ["causal", "local", "full"])
@pytest.mark.parametrize("rotary_dim", [D, D // 2])
@pytest.mark.parametrize("Lq", [1, 3])
def test_rotary_turns_q_and_the_new_keys_at_their_positions(interleaved, mode, rotary_dim, Lq):
    q, kc, vc, kn, vn, seqlens = case(Lq=Lq)
    cos, sin = angles(kc.shape[1], rotary_dim // 2)
    causal, window = mode == "causal", (4, 1) if mode == "local" else (-1, -1)
    q0, kn0, kc0 = q.clone(), kn.clone(), kc.clone()
    out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, rotary_cos=cos, rotary_sin=sin,
                                             cache_seqlens=seqlens, causal=causal, window_size=window,
                                             rotary_interleaved=interleaved)
    assert torch.equal(q, q0) and torch.equal(kn, kn0), "the caller's q and k must not change"
    qr = torch.empty(q.shape, dtype=torch.float64)
    kc_ref = kc0.double().clone()
    for b, s0 in enumerate(seqlens.tolist()):
        qpos = torch.arange(s0, s0 + Lq) if mode != "full" else torch.full((Lq,), s0)
        qr[b] = turn(q0[b].double(), cos, sin, qpos, interleaved)
        kc_ref[b, s0:s0 + kn.shape[1]] = turn(kn0[b].double(), cos, sin, torch.arange(s0, s0 + kn.shape[1]), interleaved)
    torch.testing.assert_close(kc.double(), kc_ref, rtol=0, atol=1e-5)        # the cache holds the turned keys
    lens = (seqlens + kn.shape[1]).tolist()
    ref = oracle(qr, kc_ref, vc.double(), lens, [0] * len(lens), causal=causal, window=window)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5 * ref.abs().max().item())


def test_rotary_without_new_keys_turns_q_only():
    q, kc, vc, _, _, seqlens = case(Lq=1)
    cos, sin = angles(kc.shape[1], D // 2)
    out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, rotary_cos=cos, rotary_sin=sin, cache_seqlens=seqlens,
                                             causal=True)
    qr = torch.stack([turn(q[b].double(), cos, sin, torch.tensor([s0]), True) for b, s0 in enumerate(seqlens.tolist())])
    ref = oracle(qr, kc.double(), vc.double(), seqlens.tolist(), [0, 0, 0], causal=True)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5 * ref.abs().max().item())


@pytest.mark.parametrize("opts", [dict(causal=False), dict(causal=True), dict(causal=True, window=(6, 0)),
                                  dict(causal=True, alibi=True), dict(window=(3, 2), alibi=True)],
                         ids=["full", "causal", "causal-window", "causal-alibi", "window-alibi"])
@pytest.mark.parametrize("paged", [False, True])
def test_cache_leftpad_hides_the_keys_before_each_rows_start(opts, paged):
    q, kc, vc, kn, vn, seqlens = case()
    leftpad = torch.tensor([0, 3, 11], dtype=torch.int32)
    for b, (p0, s0) in enumerate(zip(leftpad.tolist(), seqlens.tolist())):
        kc[b, :p0] = vc[b, :p0] = float("nan")           # before the row's start: never read into the output
        kc[b, s0:] = vc[b, s0:] = float("nan")           # past its keys (the new keys go to s0, s0 + 1)
    causal, window = opts.get("causal", False), opts.get("window", (-1, -1))
    alibi = torch.rand(3, 4) * 0.5 if opts.get("alibi") else None
    kw = dict(cache_seqlens=seqlens, cache_leftpad=leftpad, causal=causal, window_size=window, alibi_slopes=alibi)
    if paged:                                            # the same cache as pages of 8 keys, shuffled
        P, M = 8, kc.shape[1] // 8
        perm = torch.randperm(3 * M)
        pool_k, pool_v = torch.empty(3 * M, P, 2, D), torch.empty(3 * M, P, 2, D)
        pool_k[perm] = kc.reshape(3 * M, P, 2, D)
        pool_v[perm] = vc.reshape(3 * M, P, 2, D)
        table = perm.view(3, M).to(torch.int32)
        out = flashmin_nn.flash_attn_with_kvcache(q, pool_k, pool_v, kn, vn, block_table=table, **kw)
    else:
        out = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, **kw)
    kc_ref, vc_ref = kc.double().clone(), vc.double().clone()
    for b, s0 in enumerate(seqlens.tolist()):
        kc_ref[b, s0:s0 + 2], vc_ref[b, s0:s0 + 2] = kn[b].double(), vn[b].double()
    assert torch.isfinite(out).all()
    ref = oracle(q, kc_ref, vc_ref, (seqlens + 2).tolist(), leftpad.tolist(), causal=causal, window=window, alibi=alibi)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5 * ref.abs().max().item())


def test_rotary_and_leftpad_bad_input_is_named():
    q, kc, vc, kn, vn, seqlens = case()
    cos, sin = angles(kc.shape[1], D // 2)
    f = flashmin_nn.flash_attn_with_kvcache
    cases = [
        (dict(rotary_cos=cos), r"rotary_cos and rotary_sin"),
        (dict(rotary_cos=cos, rotary_sin=sin[:, :3]), r"rotary_sin\.shape=\(40, 3\)"),
        (dict(rotary_cos=cos.double(), rotary_sin=sin.double()), r"dtype"),
        (dict(rotary_cos=cos[:20], rotary_sin=sin[:20]), r"rotary_cos\.shape\[0\]=20"),
        (dict(rotary_cos=torch.ones(40, D), rotary_sin=torch.ones(40, D)), r"rotary_dim <= D=16"),
        (dict(cache_leftpad=torch.zeros(3, dtype=torch.int64)), r"cache_leftpad.*int32"),
        (dict(cache_leftpad=torch.zeros(2, dtype=torch.int32)), r"cache_leftpad.*\(3,\)"),
        (dict(cache_leftpad=torch.tensor([0, 18, 1], dtype=torch.int32)), r"cache_leftpad\[1\]=18.*=17\]"),
    ]
    before = kc.clone()
    for kw, pat in cases:
        with pytest.raises((ValueError, TypeError), match=pat) as info:
            f(q, kc, vc, kn, vn, cache_seqlens=seqlens, **kw)
        assert "tensor(" not in str(info.value)
    with pytest.raises(ValueError, match="need cache_seqlens"):
        f(q, kc, vc, rotary_cos=cos, rotary_sin=sin)
    assert torch.equal(kc, before), "the cache was written before an error"
