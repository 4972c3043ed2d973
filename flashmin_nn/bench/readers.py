"""Pure readers for the decode suite's read ceiling: read a KV cache once, compute nothing useful.

A decode call is memory bound, so the fastest way to read the same bytes is its ceiling. The
Triton reader sweeps each tensor front to back with the whole grid (program p reads chunks
p, p + grid, p + 2 grid, ...), so the programs running at one time read neighbouring memory: on
an H100 that order read about 1.5% faster than giving each program its own contiguous range.
It needs triton and a CUDA device; without them the suite keeps only the torch.sum reader.
"""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except Exception:  # no triton (a CPU-only torch, for one)
    triton = None

BLOCK = 8192                  # elements per program per step: 16 KB of fp16
GRIDS_PER_SM = (2, 8)         # grid sizes tried; the table takes the fastest reader

if triton is not None:
    @triton.jit
    def _sweep_sum(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        step = tl.num_programs(0).to(tl.int64) * BLOCK
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(pid.to(tl.int64) * BLOCK, n, step):   # 64-bit: caches pass 2^31 elements
            idx = start + tl.arange(0, BLOCK)
            acc += tl.load(x_ptr + idx, mask=idx < n, other=0.0, eviction_policy="evict_first").to(tl.float32)
        tl.store(out_ptr + pid, tl.sum(acc, axis=0))


def sweep_sum(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """One read of contiguous x by len(out) programs; out[p] = program p's partial sum."""
    _sweep_sum[(out.numel(),)](x, out, x.numel(), BLOCK=BLOCK, num_warps=8)
    return out


def triton_sweep_reader(device, per_sm=GRIDS_PER_SM[0]):
    """fn(k, v) reading both tensors once, or None where triton or CUDA is missing."""
    if triton is None or device.type != "cuda":
        return None
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    out = torch.empty(per_sm * sms, device=device, dtype=torch.float32)

    def read(k, v):
        sweep_sum(k, out)
        sweep_sum(v, out)
    return read
