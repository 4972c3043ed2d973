"""Packed sequences read by the kernels themselves (the op's cu_seqlens_q / cu_seqlens_k).

flash_attn_varlen_func hands packed (total, H, D) rows to one call of the op when the kernel that
serves the call reads them itself (ops.PACKED_KERNELS: the prefill kernels on CUDA); elsewhere it
pads. Reference: the float64 oracle of tests/test_options_cpu.py, one sequence at a time, on the
very (rounded) inputs. CPU: the op's own packed path (ops._reference_packed) against the oracle.
"""
import math

import pytest
import torch

import flashmin_nn
from flashmin_nn import ops

from helpers import assert_attention_close, assert_lse_close
from test_options_cpu import fa_window, oracle

INF = float("inf")


def packed_case(lens_q, lens_k, Hq, Hkv, D, dtype, device, extra_q=0, extra_k=0):
    """q (total_q + extra_q, Hq, D), k/v (total_k + extra_k, Hkv, D): rows past the last sequence
    are NaN (never to be read: flash_attn ignores them) and the output's must be 0."""
    g = torch.Generator().manual_seed(sum(lens_q) * 131 + sum(lens_k))
    mk = lambda n, h, s: (torch.randn(n, h, D, generator=g) * s).to(dtype)
    q = torch.cat([mk(sum(lens_q), Hq, 1.5), torch.full((extra_q, Hq, D), math.nan).to(dtype)])
    k = torch.cat([mk(sum(lens_k), Hkv, 1.5), torch.full((extra_k, Hkv, D), math.nan).to(dtype)])
    v = torch.cat([mk(sum(lens_k), Hkv, 1.0), torch.full((extra_k, Hkv, D), math.nan).to(dtype)])
    cu = lambda ls: torch.tensor([0] + torch.tensor(ls).cumsum(0).tolist(), dtype=torch.int32)
    return q.to(device), k.to(device), v.to(device), cu(lens_q).to(device), cu(lens_k).to(device)


def packed_expected(q, k, v, lens_q, lens_k, *, causal=False, window=(-1, -1), softcap=0.0, alibi=None, sinks=None):
    """Per sequence, bottom-right (diagonal of query i: i + len_k - len_q), flash_attn's window
    reading: out (total_q, Hq, D), lse (Hq, total_q), dead (total_q, Hq), float64 on the CPU;
    rows past the last sequence: 0, -inf, dead."""
    total_q, Hq, D = q.shape
    out = torch.zeros(total_q, Hq, v.shape[2], dtype=torch.float64)
    lse = torch.full((Hq, total_q), -INF, dtype=torch.float64)
    iq = ik = 0
    for b, (lq, lk) in enumerate(zip(lens_q, lens_k)):
        if lq:
            qs = q[iq:iq + lq].cpu().transpose(0, 1)[None]
            ks, vs = (t[ik:ik + lk].cpu().transpose(0, 1)[None] for t in (k, v))
            a = None if alibi is None else (alibi.cpu() if alibi.dim() == 1 else alibi[b].cpu())
            o, l = oracle(qs, ks, vs, [lk - lq], causal=causal, window=fa_window(window, lk), softcap=softcap, alibi=a,
                          sinks=None if sinks is None else sinks.cpu())
            out[iq:iq + lq] = o[0].transpose(0, 1)
            lse[:, iq:iq + lq] = l[0]
        iq, ik = iq + lq, ik + lk
    return out, lse, torch.isneginf(lse).T


def check_packed(out, lse, ref, ref_lse, dead, dtype, what):
    rows = lambda t: t.permute(1, 0, 2)[None]                    # (total, H, D) -> (1, H, total, D)
    assert out.is_contiguous() and lse.is_contiguous(), f"{what}: out and lse must be contiguous"
    assert_attention_close(rows(out.cpu()), rows(ref), dead.T[None], torch_out=None, dtype=dtype, what=what)
    assert_lse_close(lse.cpu()[None], ref_lse[None], dead.T[None], dtype=dtype, what=what)


# ---------------------------------------------------------------------------------------------
# the op on the CPU (cu_seqlens_* through the reference)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_op_packed_on_cpu(causal):
    lens_q, lens_k = [5, 1, 0, 12, 3], [9, 1, 4, 12, 2]
    q, k, v, cq, ck = packed_case(lens_q, lens_k, 4, 2, 16, torch.float32, "cpu", extra_q=3, extra_k=2)
    Lm, Sm = max(lens_q), max(lens_k)
    out, lse = torch.ops.flashmin.attention_fwd(q[None].transpose(1, 2), k[None].transpose(1, 2), v[None].transpose(1, 2),
                                                None, None, 16 ** -0.5, causal, Sm - Lm, "reference", -1, -1, 0.0,
                                                None, None, cq, ck, Lm, Sm)
    assert out.shape == (1, 4, q.shape[0], 16) and lse.shape == (1, 4, q.shape[0])
    ref, ref_lse, dead = packed_expected(q, k, v, lens_q, lens_k, causal=causal)
    check_packed(out[0].transpose(0, 1), lse[0], ref, ref_lse, dead, torch.float32, f"cpu causal={causal}")


# ---------------------------------------------------------------------------------------------
# CUDA: each prefill kernel reads the packed rows (no padding copies)
# ---------------------------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
KERNELS = ["prefill", "prefill_sm90"]
LENS = {   # (lens_q, lens_k): empty sequences, 1, more queries than keys, ragged against every tile
    "mixed": ([5, 1, 0, 300, 17, 97], [9, 1, 4, 300, 2, 1000]),
    "long": ([1025, 1, 1000], [1025, 2000, 1000]),
}


def _available(kernel):
    info = flashmin_nn.list_kernels()[kernel]
    if not info.available:
        pytest.skip(f"{kernel} not available: {info.reason}")


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("lens", list(LENS))
@pytest.mark.parametrize("D", [64, 128, 256])
@pytest.mark.parametrize("causal", [False, True])
def test_varlen_kernels(causal, D, lens, kernel):
    _available(kernel)
    lens_q, lens_k = LENS[lens]
    dtype = torch.bfloat16 if D == 256 else torch.float16
    q, k, v, cq, ck = packed_case(lens_q, lens_k, 4, 2, D, dtype, "cuda", extra_q=5, extra_k=7)
    with flashmin_nn.use_kernel(kernel):
        out, lse, _ = flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lens_q), max(lens_k), causal=causal,
                                                         return_attn_probs=True)
    ref, ref_lse, dead = packed_expected(q, k, v, lens_q, lens_k, causal=causal)
    check_packed(out, lse, ref, ref_lse, dead, dtype, f"{kernel} {lens} D={D} causal={causal}")


@needs_cuda
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("opts", ["window", "softcap_alibi_per_sequence"])
def test_varlen_kernels_options(opts, kernel):
    _available(kernel)
    lens_q, lens_k = LENS["mixed"]
    q, k, v, cq, ck = packed_case(lens_q, lens_k, 8, 2, 128, torch.float16, "cuda", extra_k=3)
    kw = dict(window_size=(64, 8)) if opts == "window" else \
        dict(softcap=20.0, alibi_slopes=torch.rand(len(lens_q), 8, device="cuda") * 0.3)
    with flashmin_nn.use_kernel(kernel):
        out, lse, _ = flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lens_q), max(lens_k), causal=True,
                                                         return_attn_probs=True, **kw)
    ref, ref_lse, dead = packed_expected(q, k, v, lens_q, lens_k, causal=True, window=kw.get("window_size", (-1, -1)),
                                         softcap=kw.get("softcap", 0.0), alibi=kw.get("alibi_slopes"))
    check_packed(out, lse, ref, ref_lse, dead, torch.float16, f"{kernel} {opts}")


@needs_cuda
def test_varlen_auto_reads_packed_rows_without_padding(monkeypatch):
    """auto on fp16 CUDA rows: one op call with cu_seqlens (no padded copies of q, k, v)."""
    calls = []
    real = ops._forward

    def spy(q, k, v, *args, **kw):
        calls.append((tuple(q.shape), args[-1] is not None and len(args[-1]) > 5))
        return real(q, k, v, *args, **kw)

    monkeypatch.setattr(ops, "_forward", spy)
    lens_q, lens_k = LENS["mixed"]
    q, k, v, cq, ck = packed_case(lens_q, lens_k, 4, 2, 64, torch.float16, "cuda")
    flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, max(lens_q), max(lens_k), causal=True)
    assert calls == [((1, 4, sum(lens_q), 64), True)], calls


@needs_cuda
def test_op_packed_refuses_other_kernels():
    lens_q, lens_k = [3, 4], [3, 4]
    q, k, v, cq, ck = packed_case(lens_q, lens_k, 2, 2, 64, torch.float16, "cuda")
    args = (q[None].transpose(1, 2), k[None].transpose(1, 2), v[None].transpose(1, 2), None, None, 0.125, False, 0)
    for kernel in ("minimal", "decode"):
        with pytest.raises(RuntimeError, match="packed sequences run in the prefill and prefill_sm90 kernels"):
            torch.ops.flashmin.attention_fwd(*args, kernel, -1, -1, 0.0, None, None, cq, ck, 4, 4)
