"""How fast can the H100 read a 64k-key decode cache at all? (device experiment)

    python scripts/read_ceiling.py [B H S D]      (default 8 32 65536 128: the 8.6 GB bench cell)

Times, on the same K and V (B, S, H, D) fp16 as the decode bench's largest cell, each read once:
  - a Triton sum over K and V as flat contiguous arrays (the best access pattern there is),
  - a Triton sum per (batch, head) that walks its head's 256-byte rows at the cache's row stride
    (the decode kernels' pattern: one block per head, keys in order),
  - torch.sum over both (PyTorch's reduction),
  - flashmin's decode kernel and SDPA's default (cuDNN) on a one-token query.
Timed with the benchmark's timer (flashmin_nn.bench.make_timer: triton's do_bench, median, the
L2 flushed by a 256 MB memset before each call).
"""
import sys

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

import flashmin_nn as fm
from flashmin_nn.bench import make_timer


@triton.jit
def flat_sum(x_ptr, out_ptr, n, per_prog, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    start = pid.to(tl.int64) * per_prog   # 64-bit: the cell is 2^31 elements
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for off in range(start, start + per_prog, BLOCK):
        idx = off + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + idx, mask=idx < n, other=0.0).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def head_sum(x_ptr, out_ptr, S, H, D: tl.constexpr, ROWS: tl.constexpr):
    pid = tl.program_id(0)           # b * H + h
    b, h = pid // H, pid % H
    base = x_ptr + b.to(tl.int64) * S * H * D + h * D
    acc = tl.zeros([ROWS, D], dtype=tl.float32)
    r = tl.arange(0, ROWS)[:, None]
    c = tl.arange(0, D)[None, :]
    for s in range(0, S, ROWS):
        acc += tl.load(base + (s + r).to(tl.int64) * H * D + c).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc))


def main():
    B, H, S, D = (int(a) for a in sys.argv[1:5]) if len(sys.argv) > 4 else (8, 32, 65536, 128)
    k = torch.randn(B, S, H, D, device="cuda", dtype=torch.float16)
    v = torch.randn_like(k)
    nbytes = 2 * k.numel() * k.element_size()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    timer, _ = make_timer(torch.device("cuda"), 10, 60)

    def timed(fn):
        return timer(fn) * 1e-3   # ms -> s

    n = k.numel()
    res = {}
    for progs in (sms, 4 * sms, 16 * sms):
        BLOCK = 8192
        per = triton.cdiv(triton.cdiv(n, progs), BLOCK) * BLOCK
        out = torch.empty(progs, device="cuda", dtype=torch.float32)

        def run_flat(progs=progs, per=per, out=out):
            flat_sum[(progs,)](k, out, n, per, BLOCK=BLOCK, num_warps=8)
            flat_sum[(progs,)](v, out, n, per, BLOCK=BLOCK, num_warps=8)
        res[f"triton flat sum, {progs} programs x2"] = timed(run_flat)
    outh = torch.empty(B * H, device="cuda", dtype=torch.float32)
    for rows in (16, 32):
        def run_head(rows=rows):
            head_sum[(B * H,)](k, outh, S, H, D=D, ROWS=rows, num_warps=4)
            head_sum[(B * H,)](v, outh, S, H, D=D, ROWS=rows, num_warps=4)
        res[f"triton per-head sum, {rows} rows/iter x2"] = timed(run_head)
    res["torch.sum(k) + torch.sum(v)"] = timed(lambda: (k.sum(dtype=torch.float32), v.sum(dtype=torch.float32)))
    q = torch.randn(B, 1, H, D, device="cuda", dtype=torch.float16)
    res["flashmin decode (flash_attn_with_kvcache)"] = timed(lambda: fm.flash_attn_with_kvcache(q, k, v))
    qs, ks, vs = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    res["SDPA default"] = timed(lambda: F.scaled_dot_product_attention(qs, ks, vs))
    print(f"{torch.cuda.get_device_name()}: B={B} H={H} S={S} D={D}, {nbytes / 1e9:.3f} GB read")
    for name, t in res.items():
        print(f"  {name:45s} {t * 1e6:9.1f} us  {nbytes / t / 1e9:7.1f} GB/s")


if __name__ == "__main__":
    main()
