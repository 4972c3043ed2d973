"""CUDA kernels against a float64 reference (computed on the GPU), parametrized per kernel.

Every kernel that list_kernels() reports available is run on every case, forced with
use_kernel(). "minimal" must serve every case; "tensor_core" must serve fp16/bf16 with head dims
32/64/96/128/256 (without a mask or with a bool mask), "prefill_sm90" every fp16/bf16 case on a
Hopper GPU whose build holds it; any other refusal by a forced kernel is
a skip that carries the kernel's own reason. Outputs are poisoned before each run
(helpers.poisoned_call) so an element a kernel forgets to write fails.

Pass rule: error against float64 at most ~2x torch's default SDPA error in the same dtype on the
same inputs (helpers.assert_attention_close); NaN never passes; rows that see nothing are 0.
"""
import pytest
import torch

import flashmin_nn

from helpers import (
    K,
    MASK,
    assert_attention_close,
    assert_lse_close,
    expect_error,
    filled_keys_visibility,
    key_padding_mask,
    make_qkv,
    op_args,
    poisoned_call,
    randn,
    random_float_mask,
    ref_attention,
    torch_sdpa,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"
KERNELS = ["minimal", "tensor_core", "decode", "prefill_sm90", "auto"]
DTYPES = [torch.float16, torch.bfloat16, torch.float32]
DT_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}
TC_HEAD_DIMS = (32, 64, 96, 128, 256)


def _ids(v):
    return DT_IDS.get(v) if isinstance(v, torch.dtype) else None


def _must_support(kernel, dtype, D, mask_kind):
    if kernel in ("minimal", "auto"):
        return True
    if kernel == "tensor_core":
        return dtype in (torch.float16, torch.bfloat16) and D in TC_HEAD_DIMS and mask_kind in ("none", "bool")
    if kernel == "prefill_sm90":   # on a Hopper GPU whose build has it: every fp16/bf16 call, masks included
        return (flashmin_nn.list_kernels()[kernel].available and torch.cuda.get_device_capability()[0] == 9
                and flashmin_nn.backends._sm90_built() and dtype in (torch.float16, torch.bfloat16) and D % 8 == 0)
    return False


def run_kernel(kernel, fn, *, dtype, D, mask_kind="none"):
    """fn() under use_kernel(kernel), poisoned; a refusal by a kernel not required to serve the
    case becomes a skip with the kernel's reason."""
    if kernel != "auto":
        info = flashmin_nn.list_kernels()[kernel]
        if not info.available:
            if kernel == "minimal":
                pytest.fail(f"the minimal kernel is not available on a CUDA machine: {info.reason}")
            pytest.skip(f"{kernel} not available: {info.reason}")
    try:
        with flashmin_nn.use_kernel(kernel):
            return poisoned_call(fn)
    except (RuntimeError, ValueError) as e:
        msg = str(e)
        if _must_support(kernel, dtype, D, mask_kind) or "CUDA error" in msg or "illegal" in msg:
            raise
        pytest.skip(f"{kernel} refuses this case: {msg}")


def _causal_offset(mode, L, S):
    return {"none": None, "top_left": 0, "bottom_right": S - L}[mode]


# ---------------------------------------------------------------------------------------------
# the main grid: dtype x causal x head dim x (L, S) x kernel
# ---------------------------------------------------------------------------------------------
# (L, S, input magnitude): equal, L < S, L > S, awkward lengths; some inputs scaled up (peaky softmax)
LS = [(1, 1, 1.0), (1, 1025, 3.0), (17, 17, 3.0), (97, 1000, 1.0), (256, 256, 3.0), (1000, 97, 3.0), (1025, 1025, 1.0)]
HEAD_DIMS = [32, 64, 80, 96, 128, 256]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("L,S,mag", LS, ids=[f"L{l}-S{s}" for l, s, _ in LS])
@pytest.mark.parametrize("D", HEAD_DIMS)
@pytest.mark.parametrize("causal", ["none", "top_left", "bottom_right"])
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_grid(dtype, causal, D, L, S, mag, kernel):
    B, H = 2, 2
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV, scale=mag)
    co = _causal_offset(causal, L, S)
    fn = lambda: flashmin_nn.attention(q, k, v, is_causal=co is not None, causal_offset=co or 0, return_lse=True)
    out, lse = run_kernel(kernel, fn, dtype=dtype, D=D)
    assert out.dtype == dtype and out.shape == (B, H, L, D)
    assert out.transpose(1, 2).is_contiguous(), f"out strides {out.stride()}: memory must be (B, L, H, D)"
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=co)
    t = torch_sdpa(q, k, v, causal_offset=co)
    what = f"{kernel} {DT_IDS[dtype]} {causal} D={D} L={L} S={S}"
    assert_attention_close(out, ref, dead, torch_out=t, what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)


# ---------------------------------------------------------------------------------------------
# masks and GQA on a subset
# ---------------------------------------------------------------------------------------------
LS_MASK = [(1, 1025), (17, 97), (1000, 97), (1025, 1025)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("causal", ["none", "bottom_right"])
@pytest.mark.parametrize("L,S", LS_MASK, ids=[f"L{l}-S{s}" for l, s in LS_MASK])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_masks_gqa(dtype, D, L, S, causal, group, mask_kind, kernel):
    B, Hkv = 2, 2
    Hq = Hkv * group
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dtype, device=DEV, scale=2.0)
    if mask_kind == "bool":
        m = key_padding_mask(B, L, S, device=DEV)  # (B, 1, 1, S), True = attend
    elif mask_kind == "float":
        m = random_float_mask((B, Hq, L, S), dtype=dtype, device=DEV, neg_inf_p=0.2)  # full (B, H, L, S)
    else:
        m = None
    co = _causal_offset(causal, L, S)
    fn = lambda: flashmin_nn.attention(q, k, v, attn_mask=m, is_causal=co is not None, causal_offset=co or 0,
                                       return_lse=True)
    out, lse = run_kernel(kernel, fn, dtype=dtype, D=D, mask_kind=mask_kind)
    ref, ref_lse, dead = ref_attention(q, k, v, attn_mask=m, causal_offset=co)
    t = torch_sdpa(q, k, v, attn_mask=m, causal_offset=co)
    what = f"{kernel} {DT_IDS[dtype]} D={D} L={L} S={S} {causal} g={group} mask={mask_kind}"
    assert_attention_close(out, ref, dead, torch_out=t, what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_sdpa_api_masks_and_gqa(dtype, kernel):
    # the torch-compatible entry point: broadcast mask shapes, enable_gqa, fully masked rows
    B, Hq, Hkv, L, S, D = 2, 8, 2, 67, 130, 64
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dtype, device=DEV, scale=2.0)
    masks = {
        "S": torch.rand(S, device=DEV) < 0.8,
        "LS": torch.rand(L, S, device=DEV) < 0.8,
        "B11S": key_padding_mask(B, L, S, device=DEV),
        "1HLS": torch.randn(1, Hq, L, S, device=DEV).to(dtype),
        "BHLS_dead": torch.rand(B, Hq, L, S, device=DEV) < 0.7,
    }
    masks["BHLS_dead"][0, 3, 5] = False
    masks["BHLS_dead"][1, :, -1] = False
    for name, m in masks.items():
        kind = "bool" if m.dtype == torch.bool else "float"
        fn = lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m, enable_gqa=True)
        out = run_kernel(kernel, fn, dtype=dtype, D=D, mask_kind=kind)
        ref, _, dead = ref_attention(q, k, v, attn_mask=m)
        if name == "BHLS_dead":
            assert dead.sum() == 1 + Hq
        assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=m), what=f"{kernel} mask {name}")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("Sq,Sk", [(1, 4096), (7, 300), (300, 7), (128, 128)])
def test_flash_attn_func_cuda(Sq, Sk, kernel):
    dtype, B, Hq, Hkv, D = torch.float16, 3, 8, 2, 128
    q = randn(B, Sq, Hq, D, dtype=dtype, device=DEV, scale=2.0)
    k = randn(B, Sk, Hkv, D, dtype=dtype, device=DEV, scale=2.0)
    v = randn(B, Sk, Hkv, D, dtype=dtype, device=DEV)
    fn = lambda: flashmin_nn.flash_attn_func(q, k, v, causal=True, return_lse=True)
    out, lse = run_kernel(kernel, fn, dtype=dtype, D=D)
    assert out.shape == (B, Sq, Hq, D) and out.is_contiguous()
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))
    ref, ref_lse, dead = ref_attention(qh, kh, vh, causal_offset=Sk - Sq)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=torch_sdpa(qh, kh, vh, causal_offset=Sk - Sq),
                           what=f"flash {kernel} {Sq}x{Sk}")
    assert_lse_close(lse, ref_lse, dead, dtype=dtype)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("Lq", [1, 4])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=_ids)
def test_flash_attn_with_kvcache_cuda(dtype, D, Lq, kernel):
    from helpers import kvcache_expected

    B, S_max, Hq, Hkv = 4, 4096, 8, 2
    kc = randn(B, S_max, Hkv, D, dtype=dtype, device=DEV, scale=2.0)
    vc = randn(B, S_max, Hkv, D, dtype=dtype, device=DEV)
    q = randn(B, Lq, Hq, D, dtype=dtype, device=DEV, scale=2.0)
    kn = randn(B, Lq, Hkv, D, dtype=dtype, device=DEV, scale=2.0)
    vn = randn(B, Lq, Hkv, D, dtype=dtype, device=DEV)
    lens = [0, 1, 1000, S_max - Lq]
    ekc, evc, ref, ref_lse, dead = kvcache_expected(q, kc, vc, kn, vn, lens, causal=True)
    seqlens = torch.tensor(lens, dtype=torch.int32, device=DEV)
    fn = lambda: flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=seqlens, causal=True,
                                                     return_lse=True)
    out, lse = run_kernel(kernel, fn, dtype=dtype, D=D)
    assert torch.equal(kc, ekc) and torch.equal(vc, evc), "new keys/values not written at cache_seqlens"
    # torch's comparator: the same per-row problem as a padded batch with a bool mask
    qh, kh, vh = q.transpose(1, 2), ekc.transpose(1, 2), evc.transpose(1, 2)
    n = torch.tensor(lens, device=DEV) + Lq
    i = torch.arange(Lq, device=DEV).view(1, 1, Lq, 1)
    j = torch.arange(S_max, device=DEV).view(1, 1, 1, S_max)
    allowed = (j < n.view(B, 1, 1, 1)) & (j <= i + n.view(B, 1, 1, 1) - Lq)  # (B, 1, Lq, S_max)
    t = torch_sdpa(qh, kh, vh, attn_mask=allowed)
    assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=t, what=f"kvcache {kernel} D={D} Lq={Lq}")
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=f"kvcache {kernel}")


# ---------------------------------------------------------------------------------------------
# kernel selection on CUDA
# ---------------------------------------------------------------------------------------------
def test_list_kernels_cuda():
    ks = flashmin_nn.list_kernels()
    assert ks["minimal"].available, f"minimal kernel unavailable on a CUDA machine: {ks['minimal'].reason}"
    cap = torch.cuda.get_device_capability()
    if cap >= (8, 0):
        assert ks["tensor_core"].available, f"tensor_core unavailable on sm{cap[0]}{cap[1]}: {ks['tensor_core'].reason}"


@pytest.mark.parametrize(
    "dtype,L,S,D", [(torch.float16, 512, 512, 64), (torch.bfloat16, 1000, 1000, 128), (torch.float32, 512, 512, 64),
                    (torch.float16, 1, 4096, 128), (torch.float16, 97, 1000, 80)]
)
def test_choose_kernel_cuda(dtype, L, S, D):
    q, k, v = make_qkv(2, 4, L, S, D, dtype=dtype, device=DEV)
    name = flashmin_nn.choose_kernel(q, k, v)
    ks = flashmin_nn.list_kernels()
    assert name in ks and name != "auto" and ks[name].available, name
    if dtype == torch.float32:
        assert name not in ("prefill", "prefill_sm90")
    if dtype != torch.float32 and D in TC_HEAD_DIMS and L > 64 and ks["prefill"].available:
        # the Hopper kernel on a 9.x GPU whose build has it, the sm80 kernel elsewhere
        want = "prefill_sm90" if ks["prefill_sm90"].available else "prefill"
        assert name == want, f"auto picked {name} for a prefill {DT_IDS[dtype]} D={D} call"
    # "auto" runs what choose_kernel says
    auto = flashmin_nn.scaled_dot_product_attention(q, k, v)
    with flashmin_nn.use_kernel(name):
        forced = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert torch.equal(auto, forced)


def test_reference_kernel_on_cuda():
    q, k, v = make_qkv(2, 4, 97, 130, 64, dtype=torch.float16, device=DEV, scale=2.0)
    with flashmin_nn.use_kernel("reference"):
        out = poisoned_call(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert out.is_cuda
    ref, _, dead = ref_attention(q, k, v, causal_offset=0)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0))


# ---------------------------------------------------------------------------------------------
# strides, layout, determinism, big grids, empties, streams
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_fused_qkv_strided(dtype, kernel):
    B, L, H, D = 2, 193, 12, 64
    C = H * D
    x = randn(B, L, C, dtype=dtype, device=DEV)
    W = randn(C, 3 * C, dtype=dtype, device=DEV, scale=C ** -0.5)
    qkv = (x @ W).view(B, L, 3, H, D)  # GPT-2's c_attn output
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, L, D), row stride 3*C
    assert q.stride() == (L * 3 * C, D, 3 * C, 1)
    for causal in (False, True):
        out = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=causal),
                         dtype=dtype, D=D)
        assert out.transpose(1, 2).is_contiguous()
        qc, kc, vc = q.contiguous(), k.contiguous(), v.contiguous()
        with flashmin_nn.use_kernel(kernel):
            out_c = flashmin_nn.scaled_dot_product_attention(qc, kc, vc, is_causal=causal)
        assert torch.equal(out, out_c), f"{kernel}: strided inputs give a different answer (max diff {(out.float() - out_c.float()).abs().max().item():.3e})"
        ref, _, dead = ref_attention(q, k, v, causal_offset=0 if causal else None)
        assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0 if causal else None),
                               what=f"fused qkv {kernel}")


@pytest.mark.parametrize("kernel", KERNELS)
def test_decode_strided_cache(kernel):
    # a query of one token against a slice of a preallocated KV cache (B, H, max_len, D)
    B, H, D, max_len, S = 4, 8, 128, 2048, 1500
    dtype = torch.float16
    kc = randn(B, H, max_len, D, dtype=dtype, device=DEV, scale=2.0)
    vc = randn(B, H, max_len, D, dtype=dtype, device=DEV)
    k, v = kc[:, :, :S], vc[:, :, :S]
    q = randn(B, 1, H, D, dtype=dtype, device=DEV, scale=2.0).transpose(1, 2)  # (B, H, 1, D)
    out = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), dtype=dtype, D=D)
    ref, _, dead = ref_attention(q, k, v)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v), what=f"decode cache {kernel}")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("L,S,dtype", [(1025, 1025, torch.float16), (1, 8192, torch.bfloat16), (300, 700, torch.float32)],
                         ids=["prefill", "decode", "fp32"])
def test_deterministic(kernel, L, S, dtype):
    q, k, v = make_qkv(2, 4, L, S, 128, dtype=dtype, device=DEV, scale=2.0)
    fn = lambda: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=S - L, return_lse=True)
    o1, l1 = run_kernel(kernel, fn, dtype=dtype, D=128)
    o2, l2 = run_kernel(kernel, fn, dtype=dtype, D=128)
    assert torch.equal(o1, o2) and torch.equal(l1, l2), f"{kernel}: two runs differ"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("B,H,L,S,D", [(64, 32, 1, 64, 64), (1024, 128, 1, 8, 32), (4, 2, 70000, 3, 32)],
                         ids=["B64H32", "BH131072", "L70000"])
def test_large_grid(kernel, B, H, L, S, D):
    dtype = torch.float16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV, scale=2.0)
    out = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), dtype=dtype, D=D)
    ref, _, dead = ref_attention(q, k, v)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v), what=f"grid {kernel} B={B} H={H} L={L}")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("B,L,S", [(0, 5, 7), (2, 0, 7), (0, 0, 0), (2, 5, 0), (2, 1, 0)])
def test_empty_cuda(kernel, B, L, S):
    H, D, dtype = 4, 64, torch.float16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV)
    fn = lambda: flashmin_nn.attention(q, k, v, return_lse=True)
    out, lse = run_kernel(kernel, fn, dtype=dtype, D=D)
    assert out.shape == (B, H, L, D) and lse.shape == (B, H, L) and out.is_cuda
    assert (out == 0).all() and torch.isneginf(lse).all()
    out2 = flashmin_nn.scaled_dot_product_attention(q, k, v)
    assert out2.shape == (B, H, L, D) and (out2 == 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_current_stream(kernel):
    dtype, D = torch.float16, 64
    q, k, v = make_qkv(2, 4, 300, 300, D, dtype=dtype, device=DEV, scale=2.0)
    exp = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), dtype=dtype, D=D)
    qn = torch.full_like(q, float("nan"))
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with flashmin_nn.use_kernel(kernel), torch.cuda.stream(s):
        torch.cuda._sleep(100_000_000)  # keep s busy: a launch on another stream would read NaN
        qn.copy_(q)
        out = flashmin_nn.scaled_dot_product_attention(qn, k, v)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert torch.isfinite(out).all(), f"{kernel}: ran before the work queued on the current stream"
    assert torch.equal(out, exp)


@pytest.mark.parametrize("kernel", KERNELS)
def test_grad_modes_cuda(kernel):
    dtype, D = torch.bfloat16, 64
    q, k, v = make_qkv(1, 2, 33, 33, D, dtype=dtype, device=DEV)
    exp = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), dtype=dtype, D=D)
    qg = q.clone().requires_grad_()
    with flashmin_nn.use_kernel(kernel):
        out = flashmin_nn.scaled_dot_product_attention(qg, k, v)
        assert torch.equal(out.detach(), exp)
        with torch.inference_mode():
            assert torch.equal(flashmin_nn.scaled_dot_product_attention(q, k, v), exp)
    with pytest.raises(NotImplementedError, match="forward"):
        out.float().sum().backward()


# ---------------------------------------------------------------------------------------------
# compile and opcheck on CUDA
# ---------------------------------------------------------------------------------------------
def test_compile_cuda():
    torch._dynamo.reset()
    q, k, v = make_qkv(2, 4, 100, 100, 64, dtype=torch.float16, device=DEV)
    f = lambda q, k, v: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True) * 2
    exp = f(q, k, v)
    got = torch.compile(f, fullgraph=True, backend="aot_eager")(q, k, v)
    assert torch.equal(got, exp)
    torch._dynamo.reset()


@pytest.mark.parametrize("kernel", ["minimal", "tensor_core", "decode"])
def test_opcheck_cuda(kernel):
    if not flashmin_nn.list_kernels()[kernel].available:
        pytest.skip(flashmin_nn.list_kernels()[kernel].reason)
    dtype = torch.float32 if kernel == "minimal" else torch.float16
    L = 1 if kernel == "decode" else 37
    B, H, S, D = 2, 4, 50, 64
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV)
    m = key_padding_mask(B, L, S, device=DEV).expand(B, H, L, S)
    for args in [op_args(q, k, v, None, 0.125, True, S - L, kernel), op_args(q, k, v, m, 0.125, False, 0, kernel)]:
        try:
            out, lse = torch.ops.flashmin.attention_fwd(*args)
        except (RuntimeError, ValueError) as e:
            if kernel == "minimal":
                raise
            pytest.skip(f"{kernel} refuses: {e}")
        torch.library.opcheck(torch.ops.flashmin.attention_fwd.default, args)


# ---------------------------------------------------------------------------------------------
# CUDA-only argument checks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("D", [257, 512])
def test_head_dim_too_large(D):
    q, k, v = make_qkv(1, 2, 8, 8, D, dtype=torch.float16, device=DEV)
    expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), rf"\b{D}\b", r"256|head", types=(ValueError, RuntimeError))


def test_fp64_on_cuda():
    q, k, v = make_qkv(1, 2, 8, 8, 64, dtype=torch.float64, device=DEV)
    expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), r"float64|double", types=(TypeError, ValueError, RuntimeError))


@pytest.mark.parametrize("which", ["k", "v"])
def test_device_mismatch(which):
    q, k, v = make_qkv(1, 2, 8, 8, 64, dtype=torch.float16, device=DEV)
    if which == "k":
        k = k.cpu()
    else:
        v = v.cpu()
    pat = K if which == "k" else r"\b(v|value)\b"
    expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v), pat, r"cpu")


def test_mask_on_other_device():
    q, k, v = make_qkv(1, 2, 8, 8, 64, dtype=torch.float16, device=DEV)
    m = torch.ones(8, 8, dtype=torch.bool)
    expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, attn_mask=m), MASK, r"cpu")


def test_cpu_query_with_cuda_kv():
    q, k, v = make_qkv(1, 2, 8, 8, 64, dtype=torch.float16, device=DEV)
    expect_error(lambda: flashmin_nn.scaled_dot_product_attention(q.cpu(), k, v), r"cuda|cpu", r"device|cuda")


# ---------------------------------------------------------------------------------------------
# last: unaligned data pointers (a kernel that assumes 16-byte alignment must refuse, not fault).
# Kept at the end of the file: a faulting kernel would poison the CUDA context for later tests.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=_ids)
def test_zz_unaligned_pointers(kernel, dtype):
    B, H, L, S, D = 2, 4, 77, 91, 64
    qb = randn(B, H, L, D + 8, dtype=dtype, device=DEV, scale=2.0)
    kb = randn(B, H, S, D + 8, dtype=dtype, device=DEV, scale=2.0)
    vb = randn(B, H, S, D + 8, dtype=dtype, device=DEV)
    q, k, v = qb[..., 1:D + 1], kb[..., 3:D + 3], vb[..., 1:D + 1]  # odd element offsets, odd-ish row strides
    assert q.stride(-1) == 1 and q.data_ptr() % 16 != 0
    fn = lambda: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True)
    if kernel == "auto":
        out = poisoned_call(fn)  # auto must find a kernel that serves it
    else:
        info = flashmin_nn.list_kernels()[kernel]
        if not info.available:
            pytest.skip(info.reason)
        try:
            with flashmin_nn.use_kernel(kernel):
                out = poisoned_call(fn)
        except (RuntimeError, ValueError) as e:
            msg = str(e)
            if kernel == "minimal" or "CUDA error" in msg or "illegal" in msg:
                raise
            pytest.skip(f"{kernel} refuses unaligned inputs: {msg}")
    torch.cuda.synchronize()
    ref, _, dead = ref_attention(q, k, v, causal_offset=0)
    # torch's own SDPA faults (misaligned address) on these fp32 views: give it aligned copies.
    t_out = torch_sdpa(q.contiguous(), k.contiguous(), v.contiguous(), causal_offset=0)
    assert_attention_close(out, ref, dead, torch_out=t_out, what=f"unaligned {kernel}")


MARGIN = 256   # keys: more than the largest K/V tile of any kernel (176)


@pytest.mark.parametrize("kernel", ["tensor_core", "prefill_sm90"])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("layout", ["static_cache", "left_padded"])
def test_bool_mask_tiles_no_row_sees_are_never_read(kernel, D, layout):
    """A bool attn_mask over many keys: the prefill kernels read its visible key range per 64
    query rows first (csrc/common/mask_ranges.cu) and load only the K/V tiles inside it. Keys more
    than a tile (MARGIN) away from every key any row may see hold NaN (0 * NaN in P V would carry
    any read into the output; keys masked inside a loaded tile may be read, as any kernel reads
    them): a static cache's prompt pass (128 queries over 2048 slots, the tail empty) and a
    left-padded batch (keys before each row's first token). The result must equal the float64
    reference on the clean tensors."""
    B, H, L, S = 3, 4, 128 if layout == "static_cache" else 2048, 2048
    dt = torch.float16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dt, device="cuda", scale=1.5)
    i = torch.arange(L, device="cuda")[:, None]
    j = torch.arange(S, device="cuda")[None, :]
    if layout == "static_cache":
        keep = (j <= i).expand(B, 1, L, S)                     # causal over the filled slots 0..L-1
        bad = torch.zeros(B, S, dtype=torch.bool, device="cuda")
        bad[:, L + MARGIN:] = True
    else:
        pads = torch.tensor([0, 600, 1500], device="cuda")
        real = j[None] >= pads[:, None, None]                   # (B, 1, S)
        keep = ((j <= i)[None] & real).unsqueeze(1)            # (B, 1, L, S); padded query rows see nothing
        bad = j[0][None] < pads[:, None] - MARGIN               # padding keys a tile away from any real one
    k_bad, v_bad = k.clone(), v.clone()
    for b in range(B):
        k_bad[b, :, bad[b]] = float("nan")
        v_bad[b, :, bad[b]] = float("nan")
    mask = keep.expand(B, H, L, S)
    out = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k_bad, v_bad, attn_mask=mask),
                     dtype=dt, D=D, mask_kind="bool")
    ref, _, dead = ref_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all(), "a key no row may see was read"
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=mask), dtype=dt)


@pytest.mark.parametrize("kernel", ["tensor_core", "prefill_sm90"])
@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "unaligned"])
def test_bool_mask_ranges_of_rows_that_differ(kernel, aligned):
    """The mask-range pass (csrc/common/mask_ranges.cu) reads a group's rows as one flat space of
    16-byte chunks, several loads a thread, then the bytes past the last whole chunk (1507 keys:
    3 a row), or every byte of a mask whose rows are not 16-byte aligned (a view one byte into its
    storage, rows of 1508 bytes). Rows of one 64-row group see different spans with holes, and the
    last group is partial (150 queries). Batch row 0: every row's span lies in [300, 900), and the
    keys more than a tile (MARGIN) outside it hold NaN, so a range read too wide fails; batch row
    1: spans that start at key 0 and end at the mask's last byte, so a range read too narrow drops
    keys the reference sees."""
    B, H, L, S, D = 2, 2, 150, 1507, 64
    dt = torch.float16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dt, device="cuda", scale=1.5)
    g = torch.Generator().manual_seed(7)
    store = torch.zeros(B, 1, L, S + 1, dtype=torch.bool)
    keep = store[..., 1:] if not aligned else store[..., :S]
    for i in range(L):
        lo = 300 + int(torch.randint(0, 200, (1,), generator=g))
        hi = 900 - int(torch.randint(0, 200, (1,), generator=g))
        keep[0, 0, i, lo:hi] = True
        keep[1, 0, i, : 1 + int(torch.randint(0, 40, (1,), generator=g))] = True
        keep[1, 0, i, S - 1 - int(torch.randint(0, 40, (1,), generator=g)):] = True
        keep[:, 0, i, int(torch.randint(0, S, (1,), generator=g))] = False       # a hole
        if i % 7 == 0:
            keep[:, 0, i] = False                                              # a row that sees nothing
    store = store.cuda()
    keep = store[..., 1:] if not aligned else store[..., :S]
    k_bad, v_bad = k.clone(), v.clone()
    for t in (k_bad, v_bad):
        t[0, :, : 300 - MARGIN] = float("nan")
        t[0, :, 900 + MARGIN:] = float("nan")
    mask = keep.expand(B, H, L, S)
    out = run_kernel(kernel, lambda: flashmin_nn.scaled_dot_product_attention(q, k_bad, v_bad, attn_mask=mask),
                     dtype=dt, D=D, mask_kind="bool")
    ref, _, dead = ref_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all(), "a key no row of the group may see was read"
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=mask.contiguous()), dtype=dt)


# ---------------------------------------------------------------------------------------------
# every configuration of the Hopper kernel (csrc/prefill_sm90/prefill_sm90_hdim*.cu)
# ---------------------------------------------------------------------------------------------
# (D, L, S): the launcher picks by head dim, query and key length.
SM90_CONFIGS = {
    "d64-rows128-persistent": (64, 300, 1000),       # 192-row tiles would idle 22% of their rows
    "d64-rows192-persistent": (64, 2000, 2000),      # 5.6% idle: 192-row tiles, <= 2k keys
    "d64-rows192-per-tile": (64, 2305, 2305),        # 8.3% idle, one block per tile (> 2k keys)
    "d128-persistent": (128, 700, 1000),
    "d128-keys176": (128, 300, 4100),                # non-causal from 4k keys
    "d256-keys64": (256, 130, 250),                  # 80-key tiles would pad 250 keys to 320
    "d256-keys80": (256, 300, 1000),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=_ids)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("config", list(SM90_CONFIGS))
def test_prefill_sm90_configurations(config, causal, dtype):
    D, L, S = SM90_CONFIGS[config]
    B, H = 2, 2
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV, scale=2.0)
    co = S - L if causal else None
    fn = lambda: flashmin_nn.attention(q, k, v, is_causal=causal, causal_offset=co or 0, return_lse=True)
    out, lse = run_kernel("prefill_sm90", fn, dtype=dtype, D=D)
    ref, ref_lse, dead = ref_attention(q, k, v, causal_offset=co)
    what = f"prefill_sm90 {config} causal={causal} {DT_IDS[dtype]}"
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=co), what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)


# Persistent grids with more work tiles than SMs, so that every block runs two or more: the K/V
# ring and the Q slots run on from one tile into the next (prefill_sm90_kernel.cuh), into and out
# of tiles with no key to read (rows above a bottom-right diagonal, rows of a short batch row) and
# between tiles of different key counts (seqlens_k). B = 4, H = 16: 192 to 704 work tiles. Causal
# calls at head dim 64 without seqlens_k walk their last rounds by the host's plan (TileTail),
# whose blocks run different numbers of tiles.
# (D, L, S, causal_offset (None: not causal), per-batch key counts (None: S))
SM90_ROUNDS = {
    "d64-rows192": (64, 1000, 1000, None, None),
    "d64-rows192-causal": (64, 2000, 2000, 0, None),
    "d64-rows128-causal-lens": (64, 1000, 1000, 0, (1000, 999, 517, 1)),
    "d64-rows128-empty-tiles": (64, 1000, 600, -400, None),
    "d128-lens": (128, 1000, 1000, None, (1000, 873, 129, 40)),
    "d128-causal": (128, 1000, 1000, 0, None),
    "d128-causal-empty-tiles-lens": (128, 900, 500, -400, (500, 300, 17, 1)),
    "d128-keys176-one-q-slot": (128, 300, 8200, None, None),
    "d64-causal-1025": (64, 1025, 1025, 0, None),
    "d64-causal-top-left": (64, 1000, 2000, 0, None),
    "d256-causal": (256, 1000, 1000, 0, None),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=_ids)
@pytest.mark.parametrize("case", list(SM90_ROUNDS))
def test_prefill_sm90_several_tiles_per_block(case, dtype):
    D, L, S, co, lens = SM90_ROUNDS[case]
    B, H = 4, 16
    q, k, v = make_qkv(B, H, L, S, D, dtype=dtype, device=DEV, scale=2.0)
    seqlens = None
    if lens is not None:
        seqlens = torch.tensor(lens, dtype=torch.int32, device=DEV)
        for b, n in enumerate(lens):   # past each row's keys: never read
            k[b, :, n:] = float("nan")
            v[b, :, n:] = float("nan")
    fn = lambda: flashmin_nn.attention(q, k, v, is_causal=co is not None, causal_offset=co or 0, return_lse=True,
                                       seqlens_k=seqlens)
    out, lse = run_kernel("prefill_sm90", fn, dtype=dtype, D=D)
    refs, ts = [], []
    for b in range(B):   # with seqlens_k the diagonal moves with the row's length (bottom-right stays so)
        n = S if lens is None else lens[b]
        co_b = None if co is None else co + n - S
        kb, vb = k[b:b + 1, :, :n], v[b:b + 1, :, :n]
        refs.append(ref_attention(q[b:b + 1], kb, vb, causal_offset=co_b))
        ts.append(torch_sdpa(q[b:b + 1], kb, vb, causal_offset=co_b))
    ref, ref_lse, dead = (torch.cat([r[i] for r in refs]) for i in range(3))
    t = None if any(x is None for x in ts) else torch.cat(ts)
    what = f"prefill_sm90 {case} {DT_IDS[dtype]}"
    assert_attention_close(out, ref, dead, torch_out=t, what=what)
    assert_lse_close(lse, ref_lse, dead, dtype=dtype, what=what)


# A static cache's call as transformers' integration makes it (flashmin_nn/integrations/
# transformers.py, FilledKeys): S slots of which the first n_b are written, a (B, 1, 1, S) key
# padding row a batch row, and causal at the bottom right of the filled keys (seqlens_k). Rows:
# dense, left padding, holes, padding that leaves only the newest keys, and n = L (every slot but
# the queries' own empty). Keys from n_b on hold NaN: never read. The keys the padding hides below
# n_b are the caller's keys and may be read (the decode kernel's copies leave before its scan).
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("L", [1, 4, 16, 17, 130])
@pytest.mark.parametrize("D,group", [(64, 1), (128, 4)])
def test_static_cache_call_filled_keys_and_key_padding(kernel, L, D, group):
    B, Hkv, S, dt = 5, 2, 1030, torch.float16
    Hq = Hkv * group
    q, k, v = make_qkv(B, Hq, L, S, D, Hkv=Hkv, dtype=dt, device=DEV, scale=1.5)
    lens = [L + 283, L + 283, L + 283, L + 17, L]
    pad = torch.ones(B, 1, 1, S, dtype=torch.bool, device=DEV)
    pad[1, ..., :100] = False
    pad[2, ..., 5] = pad[2, ..., 150] = False
    pad[3, ..., : lens[3] - 3] = False
    k_bad, v_bad = k.clone(), v.clone()
    for b, n in enumerate(lens):
        k_bad[b, :, n:] = float("nan")
        v_bad[b, :, n:] = float("nan")
    seqlens = torch.tensor(lens, dtype=torch.int32, device=DEV)
    vis = filled_keys_visibility(seqlens, L, S, pad)              # (B, 1, L, S): the mask it stands for
    fn = lambda: flashmin_nn.attention(q, k_bad, v_bad, pad, None, True, S - L, seqlens_k=seqlens)
    out = run_kernel(kernel, fn, dtype=dt, D=D, mask_kind="bool")
    ref, _, dead = ref_attention(q, k, v, attn_mask=vis)
    what = f"{kernel} L={L} D={D} group={group}"
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=vis), what=what)


# seqlens_k goes to the kernels as the caller gives it (int32; flashmin_nn/functional.py) and is
# clamped to [0, S] where it is read (csrc/common/block_info.cuh, mask_ranges.cu): values past the
# keys (the largest int32 too) read no row past them, which here hold NaN in the storage beyond
# the view; a negative value leaves the row no key (zeros).
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("L", [1, 130])
@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "key_padding"])
def test_seqlens_k_values_outside_the_keys_are_clamped(kernel, L, masked):
    B, H, S, D, dt = 4, 4, 300, 64, torch.float16
    q = randn(B, H, L, D, dtype=dt, device=DEV, scale=1.5)
    store_k = randn(B, H, S + 64, D, dtype=dt, device=DEV, scale=1.5)
    store_v = randn(B, H, S + 64, D, dtype=dt, device=DEV)
    store_k[:, :, S:] = float("nan")
    store_v[:, :, S:] = float("nan")
    k, v = store_k[:, :, :S], store_v[:, :, :S]                  # views: NaN just past their end
    lens = [S + 100, 2 ** 31 - 1, -5, S // 2]
    pad = torch.ones(B, 1, 1, S, dtype=torch.bool, device=DEV) if masked else None
    if masked:
        pad[:, ..., :7] = False
    fn = lambda: flashmin_nn.attention(q, k, v, pad, None, True, S - L,
                                       seqlens_k=torch.tensor(lens, dtype=torch.int32, device=DEV))
    out = run_kernel(kernel, fn, dtype=dt, D=D, mask_kind="bool" if masked else "none")
    clamped = torch.tensor([min(max(n, 0), S) for n in lens], device=DEV)
    vis = filled_keys_visibility(clamped, L, S, pad)
    ref, _, dead = ref_attention(q, k, v, attn_mask=vis)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k.contiguous(), v.contiguous(), attn_mask=vis),
                           what=f"{kernel} L={L} masked={masked}")


@pytest.mark.parametrize("D,L", [(64, 1000), (64, 2000)])
def test_prefill_sm90_planned_walk_replayed_in_a_cuda_graph(D, L):
    # The last rounds' plan is a kernel parameter made from the shape (prefill_sm90_plan.cu keeps one
    # per shape): captured by value, replayed with new inputs, with a call of another shape run in
    # between, it must give what an eager call gives.
    if not _must_support("prefill_sm90", torch.float16, D, "none"):
        pytest.skip("prefill_sm90 needs a Hopper GPU and a build with it")
    B, H, dt = 4, 16, torch.float16
    q, k, v = make_qkv(B, H, L, L, D, dtype=dt, device=DEV, scale=2.0)
    q2, k2, v2 = make_qkv(2, 16, 1500, 1500, 64, dtype=dt, device=DEV, scale=2.0)

    def step():
        return flashmin_nn.attention(q, k, v, is_causal=True)

    with flashmin_nn.use_kernel("prefill_sm90"):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):   # warm-up off the capture (loads the extension, plans)
            step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step()
        for i in range(3):
            for t in (q, k, v):
                t.normal_()
            other = flashmin_nn.attention(q2, k2, v2, is_causal=True)   # another shape's plan
            out.fill_(float("nan"))
            graph.replay()
            exp = step()
            torch.cuda.synchronize()
            assert torch.isfinite(out).all(), f"replay {i}"
            torch.testing.assert_close(out, exp, rtol=0, atol=0, msg=lambda m: f"replay {i}: {m}")
    ref, _, dead = ref_attention(q, k, v, causal_offset=0)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=0), dtype=dt,
                           what=f"prefill_sm90 graph replay D={D} L={L}")
    ref2, _, dead2 = ref_attention(q2, k2, v2, causal_offset=0)
    assert_attention_close(other, ref2, dead2, torch_out=torch_sdpa(q2, k2, v2, causal_offset=0), dtype=dt,
                           what="prefill_sm90 the call between replays")
