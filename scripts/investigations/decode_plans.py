"""Which decode plan is fastest for a contiguous cache, beside SDPA's default (cuDNN)? Each
FLASHMIN_DECODE_EXP variant (read by the decode plan at each call; the knob exists only with an
experiment patch applied, e.g. docs/results/2026-12-03-h200-tlb/plan-knob.patch) timed as the
bench's decode suite times a cell (flashmin.scaled_dot_product_attention, one query, (B, H, L, D)
cache, the L2 flushed before each call), with SDPA timed between the variants, for several rounds.

    python scripts/investigations/decode_plans.py [--shapes 8x32x32x128x65536,...] [--rounds 2] [variant ...]

A variant "" is the default plan. Prints, per shape and variant, the median over rounds of the
flashmin time (us), of SDPA's (us) and SDPA / flashmin (above 1: flashmin is faster), with the max
abs difference of each variant's output to the default plan's.
"""
import argparse
import os
import statistics

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer


def parse_shape(s):
    B, Hq, Hkv, D, L = (int(v) for v in s.split("x"))
    return B, Hq, Hkv, D, L


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="8x32x32x128x65536,64x32x32x128x4096")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rep", type=float, default=100.0)
    ap.add_argument("variants", nargs="*", default=[""])
    args = ap.parse_args()
    timer, method = make_timer(torch.device("cuda"), 25.0, args.rep)
    print(f"timing: {method}; {args.rounds} rounds, medians")
    print("| B, Hq/Hkv, D, L | variant | fm us | sdpa us | sdpa / fm | max diff |")
    print("|---|---|---:|---:|---:|---:|")
    g = torch.Generator(device="cuda").manual_seed(0)
    for spec in args.shapes.split(","):
        B, Hq, Hkv, D, L = parse_shape(spec)
        q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.float16, generator=g)
        k = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.float16, generator=g)
        v = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.float16, generator=g)
        gqa = Hq != Hkv

        def run_fm():
            return fm.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)

        def run_sdpa():
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)

        os.environ.pop("FLASHMIN_DECODE_EXP", None)
        ref = run_fm().float()
        fm_t = {var: [] for var in args.variants}
        sdpa_t = []
        diff = {}
        for _ in range(args.rounds):
            for var in args.variants:
                os.environ["FLASHMIN_DECODE_EXP"] = var
                diff[var] = (run_fm().float() - ref).abs().max().item()
                fm_t[var].append(timer(run_fm) * 1e3)
                os.environ.pop("FLASHMIN_DECODE_EXP", None)
                sdpa_t.append(timer(run_sdpa) * 1e3)
        sd = statistics.median(sdpa_t)
        for var in args.variants:
            t = statistics.median(fm_t[var])
            print(f"| {B}, {Hq}/{Hkv}, {D}, {L} | {var or 'default'} | {t:.1f} | {sd:.1f} | {sd / t:.3f}x | {diff[var]:.1e} |",
                  flush=True)
        q = k = v = None   # free the cache before the next shape
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
