"""The conventions every row shares, so that ratios are fair: work, floors, and the accuracy check.

- FLOPs = 4 * B * H * N^2 * D, halved when causal (two N x N x D matmuls, 2 FLOPs per
  multiply-add).
- decode bytes = K + V read once = 2 * B * Hkv * L * D * element size.
- the prefill floor of a cell = its FLOPs / the dense-matmul rate measured in the same run
  (torch.matmul, 8192^3, the run's dtype).
- err = max|out - ref| / max|ref| against float64 on sampled rows; above the dtype's tolerance a
  cell is BAD.
"""
from __future__ import annotations

import functools
import math

import torch

TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-3, torch.float16: 2e-2, torch.bfloat16: 3e-2}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MATMUL_N = 8192          # the dense-matmul rate behind the prefill floor: an N^3 torch.matmul
MATMUL_N_CPU = 512       # the same on the CPU, where 8192^3 would take minutes


def attention_flops(B, H, N, D, causal):
    """The one FLOP formula: two N x N x D matmuls; causal does half the work."""
    flops = 4 * B * H * N * N * D
    return flops // 2 if causal else flops


def decode_bytes(B, Hkv, L, D, elem_size):
    """Decode is memory bound: count K and V read once."""
    return 2 * B * Hkv * L * D * elem_size


def matmul_rate(timer, device, dtype, n=None):
    """{"n", "dtype", "ms", "tflops"}: one dense n^3 torch.matmul on random data, timed like a cell."""
    n = n or (MATMUL_N if device.type == "cuda" else MATMUL_N_CPU)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ms = timer(functools.partial(torch.matmul, a, b))
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "ms": ms, "tflops": 2 * n**3 / ms / 1e9}


class Reference:
    """float64 attention on a sample of (batch, head, query row), computed once per config.

    Samples the first and last batch and head and up to `max_rows` query rows (always the first
    and the last), or everything when `full`. Causal is aligned so that query i sees key j iff
    j <= i + offset (top-left, torch's meaning, is offset 0). GQA: query head h reads kv head
    h // (Hq / Hkv).
    """

    def __init__(self, q, k, v, causal=False, offset=0, full=False, max_rows=128):
        B, H, L, D = q.shape
        dev = q.device
        if full:
            self.b, self.h, self.rows = (torch.arange(n, device=dev) for n in (B, H, L))
        else:
            self.b = torch.tensor(sorted({0, B - 1}), device=dev)
            self.h = torch.tensor(sorted({0, H - 1}), device=dev)
            n = min(L, max_rows)
            self.rows = torch.linspace(0, L - 1, n, device=dev).round().long().unique()
        kv_heads = self.h // (H // k.shape[1])
        qs = self._pick(q).double()                                              # (b, h, r, D)
        ks = k.index_select(0, self.b).index_select(1, kv_heads).double()        # (b, h, S, D)
        vs = v.index_select(0, self.b).index_select(1, kv_heads).double()
        s = qs @ ks.transpose(-1, -2) / math.sqrt(D)                              # (b, h, r, S)
        if causal:
            keys = torch.arange(k.shape[2], device=dev)
            s = s.masked_fill(keys[None, :] > self.rows[:, None] + offset, float("-inf"))
        self.out = torch.softmax(s, dim=-1) @ vs                                  # (b, h, r, D)
        self.scale = self.out.abs().max().clamp_min(1e-30)

    def _pick(self, x):
        return x.index_select(0, self.b).index_select(1, self.h).index_select(2, self.rows)

    def error(self, out):
        """max|out - ref| / max|ref| on the sample; inf when anything is NaN or inf."""
        o = self._pick(out).double()
        if not torch.isfinite(o).all():
            return float("inf")
        return ((o - self.out).abs().max() / self.scale).item()
