"""CPU correctness: every public entry point against an independent float64 reference.

Pass rule: error against the float64 reference at most about 2x what torch's own
F.scaled_dot_product_attention gets in the same dtype on the same inputs, plus a small slack
(helpers.assert_attention_close); NaN never passes; rows that see no key are exactly zero.
Shapes are awkward on purpose (1, 17, 97, 1000, 1025); B, H and D are kept small so the suite
runs in seconds on two cores.
"""
import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch

import flashmin_nn
from flashmin_nn import reference as fm_ref

from helpers import (
    assert_attention_close,
    assert_lse_close,
    key_padding_mask,
    make_qkv,
    random_bool_mask,
    random_float_mask,
    ref_attention,
    rel_err,
    torch_sdpa,
)

CPU_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DT_IDS = {torch.float32: "fp32", torch.float64: "fp64", torch.float16: "fp16", torch.bfloat16: "bf16"}
# (L, S): equal, L < S, L > S, and the awkward lengths.
LS_PAIRS = [(1, 1), (1, 1025), (17, 17), (17, 97), (97, 17), (256, 256), (1000, 1025), (1025, 1000)]


def _ids(v):
    if isinstance(v, torch.dtype):
        return DT_IDS[v]
    return None


# ---------------------------------------------------------------------------------------------
# scaled_dot_product_attention: torch semantics (top-left causal)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mag", [1.0, 3.0], ids=["n01", "x3"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("L,S", LS_PAIRS)
@pytest.mark.parametrize("dtype", CPU_DTYPES, ids=_ids)
def test_sdpa_vs_float64(dtype, L, S, causal, mag):
    B, H, D = 1, 2, 16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, scale=mag)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert out.dtype == dtype and out.shape == (B, H, L, D)
    ref, _, dead = ref_attention(q, k, v, causal_offset=0 if causal else None)
    t = torch_sdpa(q, k, v, causal_offset=0 if causal else None)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"sdpa {dtype} L={L} S={S} causal={causal}")


@pytest.mark.parametrize("D", [1, 8, 40, 80, 96, 128, 256])
def test_sdpa_head_dims(D):
    q, k, v = make_qkv(2, 2, 33, 47, D, scale=2.0)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref, _, dead = ref_attention(q, k, v, causal_offset=0)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0), what=f"D={D}")


@pytest.mark.parametrize("scale", [0.05, 0.3, 1.0, 2.5])
def test_sdpa_scale(scale):
    q, k, v = make_qkv(2, 3, 29, 31, 24)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, scale=scale)
    ref, _, dead = ref_attention(q, k, v, scale=scale)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, scale=scale), what=f"scale={scale}")
    # and the scale really is used: the default scale gives a different answer
    other = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert rel_err(other, ref) > 1e-3


@pytest.mark.parametrize("Hq,Hkv", [(4, 4), (4, 2), (8, 2), (6, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_gqa(Hq, Hkv, causal):
    q, k, v = make_qkv(2, Hq, 37, 53, 16, Hkv=Hkv, scale=2.0)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    co = 0 if causal else None
    ref, _, dead = ref_attention(q, k, v, causal_offset=co)
    t = torch_sdpa(q, k, v, causal_offset=co)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"gqa {Hq}/{Hkv}")
    if 1 < Hkv < Hq:
        # head h reads kv head h // (Hq // Hkv): grouping the other way must differ
        g = Hq // Hkv
        wrong = ref_attention(q, k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1), causal_offset=co)[0]
        assert rel_err(out, wrong) > 1e-2


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------
B_, H_, L_, S_ = 2, 3, 19, 23
MASK_SHAPES = {
    "S": (S_,),
    "LS": (L_, S_),
    "1S": (1, S_),
    "B11S": (B_, 1, 1, S_),
    "1HLS": (1, H_, L_, S_),
    "B1LS": (B_, 1, L_, S_),
    "BHLS": (B_, H_, L_, S_),
    "H1S": (H_, 1, S_),
}


@pytest.mark.parametrize("shape", list(MASK_SHAPES), ids=list(MASK_SHAPES))
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=_ids)
def test_sdpa_mask_broadcast(kind, shape, dtype):
    q, k, v = make_qkv(B_, H_, L_, S_, 16, dtype=dtype, scale=2.0)
    mshape = MASK_SHAPES[shape]
    if kind == "bool":
        m = random_bool_mask(mshape, p=0.75)
        m[..., 0] = True  # every row sees a key here (fully masked rows: own test)
    else:
        m = random_float_mask(mshape, dtype=dtype, neg_inf_p=0.2)
        m[..., 0] = 0.5
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m)
    ref, _, dead = ref_attention(q, k, v, attn_mask=m)
    assert not dead.any()
    t = torch_sdpa(q, k, v, attn_mask=m)
    assert t is not None
    assert_attention_close(out, ref, dead, torch_out=t, what=f"mask {kind} {mshape}")
    # the mask matters: without it the answer differs
    unmasked = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert rel_err(unmasked, ref) > 1e-2


def test_float_mask_fp32_values_are_added():
    # large finite biases steer attention: check they are added to the *scaled* scores
    q, k, v = make_qkv(1, 2, 8, 12, 16)
    bias = torch.randn(8, 12) * 4
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.7)
    ref, _, dead = ref_attention(q, k, v, attn_mask=bias, scale=0.7)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=bias, scale=0.7))


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=_ids)
def test_fully_masked_rows_are_zero(kind, dtype):
    B, H, L, S, D = 2, 2, 13, 21, 16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, scale=2.0)
    allow = random_bool_mask((B, H, L, S), p=0.6)
    allow[..., 0] = True
    allow[0, 1, 3] = False  # one dead row
    allow[1, :, 7:10] = False  # a block of dead rows in every head
    allow[:, :, L - 1] = False  # last row dead everywhere
    if kind == "bool":
        m = allow
    else:
        m = torch.zeros(B, H, L, S, dtype=dtype).masked_fill(~allow, float("-inf"))
    out, lse = flashmin_nn.attention(q, k, v, attn_mask=m, return_lse=True)
    ref, ref_lse, dead = ref_attention(q, k, v, attn_mask=m)
    assert dead.sum() == 1 + 2 * 3 + B * H
    assert_attention_close(out, ref, dead, dtype=dtype, what="dead rows")
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what="dead rows")
    # the public torch-compatible API: zeros too (torch itself may give NaN there)
    out2 = flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m)
    assert torch.isfinite(out2).all()
    assert (out2[dead] == 0).all()


def test_all_rows_masked():
    q, k, v = make_qkv(1, 2, 5, 7, 8)
    m = torch.zeros(5, 7, dtype=torch.bool)
    out, lse = flashmin_nn.attention(q, k, v, attn_mask=m, return_lse=True)
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.isneginf(lse).all()


# ---------------------------------------------------------------------------------------------
# flash_attn_func: (B, S, H, D), bottom-right causal, GQA by head counts, lse
# ---------------------------------------------------------------------------------------------
FA_PAIRS = [(1, 1), (1, 1025), (17, 17), (5, 17), (17, 5), (97, 256), (256, 97), (1000, 1025), (1025, 1000)]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("Sq,Sk", FA_PAIRS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=_ids)
def test_flash_attn_func_vs_float64(dtype, Sq, Sk, causal):
    B, H, D = 1, 2, 16
    q, k, v = make_qkv(B, H, Sq, Sk, D, dtype=dtype, scale=2.0)
    # flash layout (B, S, H, D): contiguous tensors of that shape
    qf, kf, vf = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    out, lse = flashmin_nn.flash_attn_func(qf, kf, vf, causal=causal, return_lse=True)
    assert out.shape == (B, Sq, H, D) and out.dtype == dtype
    assert lse.shape == (B, H, Sq) and lse.dtype == torch.float32
    co = Sk - Sq if causal else None
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=co)
    if causal and Sq > Sk:
        assert dead.any()  # the first Sq - Sk query rows see nothing
    t = torch_sdpa(q, k, v, causal_offset=co)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=t, what=f"flash {Sq}x{Sk} causal={causal}")
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what="flash lse")
    # without return_lse: just the output, same values
    out2 = flashmin_nn.flash_attn_func(qf, kf, vf, causal=causal)
    assert isinstance(out2, torch.Tensor)
    assert torch.equal(out2, out)


def test_flash_attn_func_causal_is_bottom_right():
    # Sq < Sk: the last query sees every key; with top-left it would see only Sq keys.
    Sq, Sk = 4, 10
    q, k, v = make_qkv(1, 1, Sq, Sk, 8)
    out = flashmin_nn.flash_attn_func(*(t.transpose(1, 2) for t in (q, k, v)), causal=True)
    br = ref_attention(q, k, v, causal_offset=Sk - Sq)[0]
    tl = ref_attention(q, k, v, causal_offset=0)[0]
    assert rel_err(out.transpose(1, 2), br) < 1e-5
    assert rel_err(out.transpose(1, 2), tl) > 1e-2


@pytest.mark.parametrize("Hq,Hkv", [(4, 2), (8, 1)])
def test_flash_attn_func_gqa_and_scale(Hq, Hkv):
    q, k, v = make_qkv(2, Hq, 33, 40, 32, Hkv=Hkv, scale=2.0)
    qf, kf, vf = (t.transpose(1, 2) for t in (q, k, v))
    out, lse = flashmin_nn.flash_attn_func(qf, kf, vf, softmax_scale=0.11, causal=True, return_lse=True)
    ref, ref_lse, dead = ref_attention(q, k, v, scale=0.11, causal_offset=40 - 33)
    t = torch_sdpa(q, k, v, scale=0.11, causal_offset=40 - 33)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=t)
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# attention(): the general form
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [-40, -5, -1, 0, 3, 7, 39, 100])
def test_attention_causal_offset(offset):
    L, S = 33, 40
    q, k, v = make_qkv(2, 2, L, S, 16, scale=2.0)
    out, lse = flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=offset, return_lse=True)
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=offset)
    t = torch_sdpa(q, k, v, causal_offset=offset)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"offset={offset}")
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32, what=f"offset={offset}")


@pytest.mark.parametrize("offset", [0, 9, -3])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_attention_mask_and_causal(kind, offset):
    # what the transformers integration does: bottom-right causal plus a key-padding mask
    B, H, L, S = 3, 2, 11, 20
    q, k, v = make_qkv(B, H, L, S, 16, scale=2.0)
    pad = key_padding_mask(B, L, S)  # (B, 1, 1, S)
    m = pad if kind == "bool" else torch.zeros(B, 1, 1, S).masked_fill(~pad, float("-inf"))
    out = flashmin_nn.attention(q, k, v, attn_mask=m, is_causal=True, causal_offset=offset)
    ref, _, dead = ref_attention(q, k, v, attn_mask=m, causal_offset=offset)
    t = torch_sdpa(q, k, v, attn_mask=m, causal_offset=offset)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"mask+causal {kind} {offset}")


def test_attention_defaults_match_sdpa():
    q, k, v = make_qkv(2, 4, 17, 29, 32)
    a = flashmin_nn.attention(q, k, v)
    b = flashmin_nn.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# value head dim different from query head dim (torch allows E != Ev)
# ---------------------------------------------------------------------------------------------
def test_value_head_dim_differs():
    q, k, v = make_qkv(1, 2, 9, 11, 16, Dv=24)
    try:
        out = flashmin_nn.scaled_dot_product_attention(q, k, v)
    except (ValueError, TypeError, RuntimeError) as e:  # allowed, if it says what is wrong
        assert "24" in str(e) and "16" in str(e), f"unclear error: {e}"
        return
    ref, _, dead = ref_attention(q, k, v)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v))


# ---------------------------------------------------------------------------------------------
# flashmin_nn.reference itself: naive_attention and tiled_attention
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["plain", "causal_tl", "causal_br", "gqa", "bool", "float", "dead", "scale"])
def test_naive_attention_matches_independent_reference(case):
    B, Hq, Hkv, L, S, D = 2, 4, 4, 13, 18, 16
    kw, rkw = {}, {}
    if case == "gqa":
        Hkv = 2
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, scale=2.0)
    if case == "causal_tl":
        kw = dict(is_causal=True, causal_offset=0)
        rkw = dict(causal_offset=0)
    elif case == "causal_br":
        kw = dict(is_causal=True, causal_offset=S - L)
        rkw = dict(causal_offset=S - L)
    elif case == "bool":
        m = random_bool_mask((B, 1, L, S))
        m[..., 0] = True
        kw = rkw = dict(attn_mask=m)
    elif case == "float":
        m = random_float_mask((Hq, L, S))
        m[..., 0] = 0.0
        kw = rkw = dict(attn_mask=m)
    elif case == "dead":
        m = random_bool_mask((L, S))
        m[2] = False
        kw = rkw = dict(attn_mask=m)
    elif case == "scale":
        kw = rkw = dict(scale=0.37)
    out, lse = fm_ref.naive_attention(q, k, v, return_lse=True, **kw)
    assert out.dtype == torch.float64
    ref, ref_lse, dead = ref_attention(q, k, v, **rkw)
    assert torch.isfinite(out).all()
    assert (out[dead] == 0).all()
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    assert torch.isneginf(lse[dead]).all()
    live = ~dead
    torch.testing.assert_close(lse[live].double(), ref_lse[live], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 7, 16, 64, 1024])
@pytest.mark.parametrize("causal", [False, True])
def test_tiled_attention_block_sizes(block_size, causal):
    B, H, L, S, D = 1, 2, 45, 97, 16
    q, k, v = make_qkv(B, H, L, S, D, scale=3.0)
    m = random_bool_mask((B, 1, L, S), p=0.8)
    m[0, 0, 5] = False  # a dead row
    m_exp = m.expand(B, H, L, S)
    offset = S - L
    out, lse = fm_ref.tiled_attention(
        q, k, v, m_exp, 1.0 / math.sqrt(D), causal, offset if causal else 0, block_size=block_size
    )
    ref, ref_lse, dead = ref_attention(q, k, v, attn_mask=m, causal_offset=offset if causal else None)
    t = torch_sdpa(q, k, v, attn_mask=m, causal_offset=offset if causal else None)
    assert_attention_close(out, ref, dead, torch_out=t, what=f"tiled block={block_size}")
    assert_lse_close(lse, ref_lse, dead, dtype=torch.float32, what=f"tiled block={block_size}")


@pytest.mark.parametrize("dtype", CPU_DTYPES, ids=_ids)
def test_output_dtype_and_layout(dtype):
    B, H, L, S, D = 2, 3, 7, 9, 8
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype)
    out = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert out.dtype == dtype and out.device == q.device
    assert out.shape == (B, H, L, D)
    assert out.transpose(1, 2).is_contiguous(), f"out strides {out.stride()}: memory must be (B, L, H, D)"
    out2 = flashmin_nn.attention(q, k, v)
    assert out2.transpose(1, 2).is_contiguous()
    fo = flashmin_nn.flash_attn_func(*(t.transpose(1, 2) for t in (q, k, v)))
    assert fo.shape == (B, L, H, D) and fo.is_contiguous()


# ---------------------------------------------------------------------------------------------
# memory: the CPU path never materialises the (L, S) score matrix
# ---------------------------------------------------------------------------------------------
_MEM_SCRIPT = r"""
import json, os, resource, sys, time
import torch
import flashmin_nn
torch.manual_seed(0)
L = S = 16384
D = 32
q = torch.randn(1, 1, L, D)
k = torch.randn(1, 1, S, D)
v = torch.randn(1, 1, S, D)
# warm up (lazy initialisation, thread pools) on a small call, so it is not counted
flashmin_nn.scaled_dot_product_attention(q[:, :, :300], k[:, :, :300], v[:, :, :300], is_causal=True)
page = os.sysconf("SC_PAGE_SIZE")
def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
peak_import = maxrss()
# Reset the high-water mark (Linux: "5" > clear_refs), so ru_maxrss measures from here on and an
# earlier transient (imports, warm-up) neither hides nor inflates the call's own peak.
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
peak_before = maxrss()
base = peak_before if reset else rss_now()  # no reset: the current RSS, the strict baseline
t0 = time.perf_counter()
out = flashmin_nn.scaled_dot_product_attention(q, k, v)
dt = time.perf_counter() - t0
peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# spot-check a few rows in float64
rows = torch.tensor([0, 1, 8191, L - 1])
s = (q[0, 0, rows].double() @ k[0, 0].double().T) / D ** 0.5
ref = torch.softmax(s, -1) @ v[0, 0].double()
err = ((out[0, 0, rows].double() - ref).norm() / ref.norm()).item()
print(json.dumps(dict(base=base, reset=reset, peak_import=peak_import, peak_before=peak_before, peak_after=peak_after, seconds=dt, err=err,
                      finite=bool(torch.isfinite(out).all()), shape=list(out.shape))))
"""


def test_cpu_memory_is_not_quadratic():
    L = S = 16384
    score_bytes = L * S * 4  # 1 GiB fp32 score matrix
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", _MEM_SCRIPT], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    delta = r["peak_after"] - r["base"]
    assert r["finite"] and r["shape"] == [1, 1, L, 32]
    assert r["err"] < 1e-5, r
    assert delta < score_bytes / 8, (
        f"extra peak memory {delta / 2**20:.0f} MiB for a 16k x 16k call (score matrix {score_bytes / 2**20:.0f} MiB); "
        f"limit {score_bytes / 8 / 2**20:.0f} MiB; {r}"
    )
    print(f"16k x 16k CPU call: {r['seconds']:.1f} s, extra peak {delta / 2**20:.1f} MiB, wall {time.time() - t0:.1f} s")


# ---------------------------------------------------------------------------------------------
# flash_attn_with_kvcache: per-batch cache lengths, new keys written in place, bottom-right causal
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Lq,new", [(1, False), (1, True), (4, True), (4, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=_ids)
def test_flash_attn_with_kvcache(dtype, Lq, new, causal):
    from helpers import kvcache_expected, randn

    B, S_max, Hq, Hkv, D = 3, 67, 4, 2, 16
    kc = randn(B, S_max, Hkv, D, dtype=dtype, scale=2.0)
    vc = randn(B, S_max, Hkv, D, dtype=dtype)
    q = randn(B, Lq, Hq, D, dtype=dtype, scale=2.0)
    n_new = Lq if new else 0
    kn = randn(B, n_new, Hkv, D, dtype=dtype, scale=2.0) if new else None
    vn = randn(B, n_new, Hkv, D, dtype=dtype) if new else None
    lens = [13, S_max - n_new, 0 if new else 2]  # a short row, a full one, an (almost) empty one
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, lens, causal=causal)
    seqlens = torch.tensor(lens, dtype=torch.int32)
    out, lse = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=seqlens, causal=causal,
                                                   return_lse=True)
    assert out.shape == (B, Lq, Hq, D) and out.dtype == dtype
    assert torch.equal(kc, ekc) and torch.equal(vc, evc), "new keys/values not written at cache_seqlens"
    assert_attention_close(out.transpose(1, 2), ref, dead, dtype=dtype, what="kvcache")
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what="kvcache")


def test_flash_attn_with_kvcache_int_lengths_and_full_cache():
    from helpers import randn

    B, S_max, H, D = 2, 40, 2, 16
    kc, vc = randn(B, S_max, H, D), randn(B, S_max, H, D)
    q = randn(B, 1, H, D)
    # no cache_seqlens: the whole cache; equals flash_attn_func on the cache
    a = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, causal=True)
    b = flashmin_nn.flash_attn_func(q, kc, vc, causal=True)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # an int length: the same as flash_attn_func on the prefix
    a = flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=25, causal=True)
    b = flashmin_nn.flash_attn_func(q, kc[:, :25], vc[:, :25], causal=True)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # lengths that do not fit the cache are refused
    from helpers import expect_error

    expect_error(lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=41), "cache_seqlens", "41|40")
    expect_error(lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kc[:, :1], vc[:, :1], cache_seqlens=40),
                 "cache_seqlens|fit")
