"""flashmin kernels side by side with their peers over a sweep of shapes, in one process: the
quick look while a kernel is tuned. Each forced kernel (--kernels) is a column, timed beside
SDPA's flash and cuDNN backends (prefill) or SDPA's default and flash (decode), and checked
against the first peer's output (max abs diff).

    python scripts/tune.py --suite prefill --dtype bf16 --kernels prefill,prefill_sm90
    python scripts/tune.py --suite decode --kernels decode --hdims 128 --seqlens 65536 --layout bshd --hkv 8
        (decode shapes: B=8, H=32 at D=128 and 12 at D=64 unless --heads; --hkv for grouped
        queries; --layout bshd for FlashAttention's (B, L, H, D) cache)

Prints one table: per shape, each kernel's rate and its ratio to flash (prefill, TFLOP/s) or to
SDPA's default (decode, GB/s). A kernel that refuses a shape (or is not in this build) reads nan.
Timed with the benchmark's timer (flashmin_nn.bench.timing.make_timer).
"""
import argparse
import functools
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm
from flashmin_nn.bench.measures import attention_flops, decode_bytes
from flashmin_nn.bench.timing import make_timer

PREFILL_N = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
DECODE_L = [1024, 4096, 16384, 65536]


def sdpa(backend, gqa):
    def run(q, k, v, causal):
        if backend is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
    return run


def flashmin(kernel, gqa):
    def run(q, k, v, causal):
        with fm.use_kernel(kernel):
            return fm.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
    return run


def shapes_and_inputs(args, dtype):
    """Yields (shape label, q, k, v, causal, work, unit): work in FLOPs (prefill) or bytes (decode)."""
    if args.suite == "prefill":
        for D in args.hdims:
            for causal in (False, True):
                for N in args.seqlens or PREFILL_N:
                    B, H = 16384 // N, 2048 // D
                    q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=dtype) for _ in range(3))
                    yield (D, causal, N), q, k, v, causal, attention_flops(B, H, N, D, causal), 1e9   # ms -> TFLOP/s
        return
    for H, D in ((32, 128), (12, 64)):
        if D not in args.hdims:
            continue
        H = args.heads or H
        Hkv = args.hkv or H
        for L in args.seqlens or DECODE_L:
            B = 8
            q = torch.randn(B, H, 1, D, device="cuda", dtype=dtype)
            if args.layout == "bshd":   # FlashAttention's cache layout, (B, L, Hkv, D), seen as (B, Hkv, L, D)
                k, v = (torch.randn(B, L, Hkv, D, device="cuda", dtype=dtype).transpose(1, 2) for _ in range(2))
            else:
                k, v = (torch.randn(B, Hkv, L, D, device="cuda", dtype=dtype) for _ in range(2))
            yield (D, H, L), q, k, v, False, decode_bytes(B, Hkv, L, D, q.element_size()), 1e6   # ms -> GB/s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=["prefill", "decode"], default="prefill")
    ap.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    ap.add_argument("--kernels", default=None,
                    help="comma list of flashmin kernels to force (default: auto)")
    ap.add_argument("--rep", type=float, default=40)
    ap.add_argument("--hdims", type=lambda t: [int(x) for x in t.split(",")], default=[64, 128])
    ap.add_argument("--seqlens", type=lambda t: [int(x) for x in t.split(",")], default=None)
    ap.add_argument("--heads", type=int, default=None, help="decode: query heads (default: 32 at D=128, 12 at D=64)")
    ap.add_argument("--hkv", type=int, default=None, help="decode: kv heads (grouped-query attention; default: H)")
    ap.add_argument("--layout", choices=["bhld", "bshd"], default="bhld",
                    help="decode: K/V cache layout, (B, Hkv, L, D) or FlashAttention's (B, L, Hkv, D)")
    args = ap.parse_args()
    timer, _ = make_timer(torch.device("cuda"), 10, args.rep)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    gqa = args.suite == "decode" and args.hkv is not None
    kernels = [k.strip() for k in (args.kernels or "auto").split(",") if k.strip()]
    mine = {k: flashmin(k, gqa) for k in kernels}
    if args.suite == "prefill":
        peers = {"flash": sdpa(SDPBackend.FLASH_ATTENTION, gqa), "cudnn": sdpa(SDPBackend.CUDNN_ATTENTION, gqa)}
    else:
        peers = {"sdpa": sdpa(None, gqa), "flash": sdpa(SDPBackend.FLASH_ATTENTION, gqa)}
    first = next(iter(peers))
    torch.manual_seed(0)
    digits = 2 if args.suite == "prefill" else 3
    layout = f" {args.layout}, Hkv={args.hkv or 'H'}" if args.suite == "decode" else ""
    print(f"{args.suite} {args.dtype}{layout} ({'TFLOP/s' if args.suite == 'prefill' else 'GB/s'}); "
          f"{torch.cuda.get_device_name()}")
    print(" | ".join(["shape", *kernels, *(f"{k}/{first}" for k in kernels), *peers, "max err"]))
    for shape, q, k, v, causal, work, unit in shapes_and_inputs(args, dtype):
        ref = peers[first](q, k, v, causal).float()
        rates, err = {}, 0.0
        for name, fn in [*mine.items(), *peers.items()]:
            try:
                if name in mine:
                    err = max(err, (fn(q, k, v, causal).float() - ref).abs().max().item())
                rates[name] = work / timer(functools.partial(fn, q, k, v, causal)) / unit
            except (RuntimeError, ValueError) as e:   # a kernel or backend that refuses this shape: no rate
                print(f"{name} {shape}: {' '.join(str(e).split())[:160]}", file=sys.stderr)
                rates[name] = math.nan
        cells = [str(shape), *(f"{rates[k]:.0f}" for k in kernels),
                 *(f"{rates[k] / rates[first]:.{digits}f}" for k in kernels), *(f"{rates[p]:.0f}" for p in peers),
                 f"{err:.1e}"]
        print(" | ".join(cells), flush=True)
        del q, k, v, ref
    return 0


if __name__ == "__main__":
    sys.exit(main())
