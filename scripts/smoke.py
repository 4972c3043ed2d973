"""Kernel development check: every CUDA kernel against float64 on awkward shapes, in seconds.

Prints one line per failing case and a table of the worst error ratio (flashmin error / torch
SDPA error in the same dtype) per kernel and dtype. The full suite is tests/; this is the quick
look used while a kernel is being written (scripts/device_run.sh, STAGES=smoke).
"""
import itertools
import math

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn.reference import naive_attention


def rel(a, b):
    return ((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item()


def main():
    dev = "cuda"
    kernels = [n for n, info in fm.list_kernels().items() if info.available and n != "reference"]
    shapes = [(1, 1), (1, 1025), (17, 17), (97, 1000), (1000, 97), (256, 256), (1025, 1025)]
    worst = {}
    bad = 0
    for kern, dtype, D, (L, S), causal, gqa, mask in itertools.product(
            kernels, (torch.float16, torch.bfloat16, torch.float32), (32, 64, 80, 96, 128, 256),
            shapes, (False, True), (1, 4), ("none", "bool", "float")):
        if (gqa == 4 or mask != "none") and D not in (64, 128):
            continue
        B, Hkv = 2, 2
        Hq = Hkv * gqa
        g = torch.Generator(device=dev).manual_seed(hash((D, L, S, causal, gqa, mask)) % 2**31)
        q = torch.randn(B, Hq, L, D, device=dev, dtype=dtype, generator=g) * 2
        k = torch.randn(B, Hkv, S, D, device=dev, dtype=dtype, generator=g) * 2
        v = torch.randn(B, Hkv, S, D, device=dev, dtype=dtype, generator=g)
        am = None
        if mask == "bool":
            am = torch.rand(B, 1, 1, S, device=dev, generator=g) > 0.3
        elif mask == "float":
            am = torch.randn(B, Hq, L, S, device=dev, dtype=dtype, generator=g)
        ic = causal and am is None
        ref = naive_attention(q, k, v, am, is_causal=ic)
        try:
            with fm.use_kernel(kern):
                out = fm.scaled_dot_product_attention(q, k, v, am, is_causal=ic, enable_gqa=gqa > 1)
        except RuntimeError as e:
            if "cannot run this call" in str(e):
                continue
            raise
        torch.cuda.synchronize()
        sd = F.scaled_dot_product_attention(q, k, v, am, is_causal=ic, enable_gqa=gqa > 1)
        sd_err = rel(torch.nan_to_num(sd), ref)
        err = rel(out, ref) if torch.isfinite(out).all() else math.inf
        ratio = err / max(sd_err, {torch.float32: 1e-7, torch.float16: 2e-4, torch.bfloat16: 2e-3}[dtype])
        key = (kern, str(dtype).replace("torch.", ""))
        worst[key] = max(worst.get(key, 0), ratio)
        if not ratio <= 2.0:
            bad += 1
            print(f"BAD {kern} {dtype} D={D} L={L} S={S} causal={ic} gqa={gqa} mask={mask}: err={err:.2e} sdpa={sd_err:.2e}")
    print("\nkernel      dtype      worst err / sdpa err")
    for (kern, dt), r in sorted(worst.items()):
        print(f"{kern:<11} {dt:<10} {r:6.2f}")
    print(f"failing cases: {bad}")

    # The teaching kernel's bar: B=16, H=12, D=64, fp32, N=1024 (original: 185.6 ms).
    from triton.testing import do_bench
    q, k, v = (torch.randn(16, 12, 1024, 64, device=dev) for _ in range(3))
    with fm.use_kernel("minimal"):
        t_min = do_bench(lambda: fm.scaled_dot_product_attention(q, k, v), return_mode="median")
    t_man = do_bench(lambda: torch.softmax(q @ k.transpose(-1, -2) / 8.0, -1) @ v, return_mode="median")
    print(f"minimal fp32 N=1024: {t_min:.3f} ms; manual fp32: {t_man:.3f} ms; original (published): 185.6 ms")


if __name__ == "__main__":
    main()
