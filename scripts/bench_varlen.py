"""Packed sequences: flash_attn_varlen_func read in place by the kernels, against the padded path
and against SDPA on the padded batch a PyTorch user would build, same run.

    python scripts/bench_varlen.py [--dtype fp16|bf16] [--hdims 64,128] [--quick]

Each case packs sequences of mixed lengths (a fixed seed; total tokens ~16k) with H * D = 2048,
causal (bottom-right in each sequence, as flash_attn). Columns, each the median time with the L2
flushed before every call (flashmin_nn.bench.timing):
  - packed: flashmin_nn.flash_attn_varlen_func as it runs (the kernels read the packed rows);
  - padded: the same function with the packed path turned off (its fallback: copies into a
    (B, max_seqlen, H, D) batch, one call, rows gathered back);
  - sdpa: F.scaled_dot_product_attention (its default backend) on a (B, H, max_seqlen, D) batch
    with a bool mask (causal and key padding), inputs already padded (no copies timed).
TFLOP/s counts the pairs each sequence really has: 4 * H * D * sum_b (L_b^2 / 2) for causal.
Every packed result is checked against the padded path (max abs difference).
"""
import argparse
import sys

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn import flash_attn_interface
from flashmin_nn.bench.timing import log, make_timer

CASES = {   # name: sequence lengths (drawn once, fixed seed)
    "16 x 1k +-50%": dict(n=16, mean=1024, spread=0.5),
    "64 x 256 +-75%": dict(n=64, mean=256, spread=0.75),
    "4 x 4k +-25%": dict(n=4, mean=4096, spread=0.25),
}


def lengths(n, mean, spread, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo, hi = int(mean * (1 - spread)), int(mean * (1 + spread))
    return torch.randint(max(1, lo), hi + 1, (n,), generator=g).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    ap.add_argument("--hdims", default="64,128")
    ap.add_argument("--quick", action="store_true", help="shorter timing")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_varlen.py needs a CUDA device")
        return 1
    dt = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    timer, method = make_timer(torch.device("cuda"), 5 if args.quick else 25, 20 if args.quick else 100)
    print(f"# flashmin packed sequences, {torch.cuda.get_device_name()}, {args.dtype}, causal; "
          f"median ms ({method}), TFLOP/s over the real pairs")
    print("| case | D | tokens | packed ms | padded ms | sdpa ms | packed TFLOP/s | padded / packed | sdpa / packed | max diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for D in (int(x) for x in args.hdims.split(",")):
        H = 2048 // D
        for name, spec in CASES.items():
            ls = lengths(**spec)
            total, B, Lm = sum(ls), len(ls), max(ls)
            cu = torch.tensor([0] + torch.tensor(ls).cumsum(0).tolist(), dtype=torch.int32, device="cuda")
            q, k, v = (torch.randn(total, H, D, device="cuda", dtype=dt) for _ in range(3))
            packed = lambda: fm.flash_attn_varlen_func(q, k, v, cu, cu, Lm, Lm, causal=True, check_lengths=False)
            real = flash_attn_interface.packed_attention

            def padded():
                flash_attn_interface.packed_attention = lambda *a, **kw: None
                try:
                    return fm.flash_attn_varlen_func(q, k, v, cu, cu, Lm, Lm, causal=True, check_lengths=False)
                finally:
                    flash_attn_interface.packed_attention = real

            # SDPA's batch: (B, H, Lm, D) with a bool mask (causal over each sequence, right padding).
            qp, kp, vp = (torch.zeros(B, H, Lm, D, device="cuda", dtype=dt) for _ in range(3))
            for b, (s, n) in enumerate(zip(cu[:-1].tolist(), ls)):
                qp[b, :, :n], kp[b, :, :n], vp[b, :, :n] = q[s:s + n].transpose(0, 1), k[s:s + n].transpose(0, 1), v[s:s + n].transpose(0, 1)
            i = torch.arange(Lm, device="cuda")
            real_keys = i[None, :] < torch.tensor(ls, device="cuda")[:, None]                 # (B, Lm)
            mask = (i[None, :, None] >= i[None, None, :]) & real_keys[:, None, :]            # (B, Lm, Lm)
            mask = mask | ~real_keys[:, :, None]              # padded query rows see every key (no NaN rows)
            mask = mask[:, None]
            sdpa = lambda: F.scaled_dot_product_attention(qp, kp, vp, attn_mask=mask)
            diff = (packed().float() - padded().float()).abs().max().item()
            t_packed, t_padded, t_sdpa = timer(packed), timer(padded), timer(sdpa)
            flops = sum(4 * H * D * n * n / 2 for n in ls)
            print(f"| {name} | {D} | {total} | {t_packed:.3f} | {t_padded:.3f} | {t_sdpa:.3f} | "
                  f"{flops / t_packed / 1e9:.0f} | {t_padded / t_packed:.2f}x | {t_sdpa / t_packed:.2f}x | {diff:.1e} |",
                  flush=True)
            log(f"{name} D={D} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
