"""Which decode variant reads the cache fastest? Every variant of FLASHMIN_DECODE_EXP (read by the
decode plan at each call) timed in one process beside SDPA's default, on the bench's decode
shapes ((B, Hkv, L, D) caches, one query, fp16). The knob exists only with the experiment patch
applied and the extension rebuilt:

    git apply docs/results/2026-12-02-h200-37a5409/decode-experiment.patch   (onto 37a5409)
    python scripts/investigations/decode_variants.py ["evict=0" "cfg=9" ...]
    python scripts/investigations/decode_variants.py --shapes waves "" cfg=one cfg=trio
      (docs/results/2026-12-04-h200-trio/trio-knob.patch: cfg=one|pair|trio, splits=S)

Without the patch every variant runs the committed kernel (the environment variable is ignored).
--shapes waves: grids of more than two blocks per SM at H=32 (or 32/8), D=128 (B=16 to 128, 1k to
32k keys) instead of the bench's decode cells.

Prints, per shape, each variant's GB/s (K + V bytes once / time), its ratio to SDPA's default
(timed before and after the variants; the ratio uses their mean) and its max abs difference to
SDPA's output. Timed with the benchmark's timer (flashmin_nn.bench.timing.make_timer).
"""
import os
import sys

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn.bench.measures import decode_bytes
from flashmin_nn.bench.timing import make_timer

DEFAULT = ["", "evict=0", "evict=1", "cfg=9", "cfg=12", "cfg=11", "cfg=14", "splits=2,sweep=1", "splits=2,sweep=0",
           "cfg=9,splits=2,sweep=1", ""]
SHAPES = [(8, Hq, Hkv, D, L) for Hq, Hkv, D in ((32, 32, 128), (12, 12, 64), (32, 8, 128))
          for L in (1024, 4096, 16384, 65536)]
SHAPES += [(B, 32, 32, 128, L) for B in (1, 64) for L in (4096, 32768)]
WAVES = [(B, 32, 32, 128, L) for B in (16, 32, 64, 128) for L in (1024, 4096, 16384) if B * L <= 128 * 16384]
WAVES += [(64, 32, 32, 128, L) for L in (2048, 8192, 32768)] + [(12, 32, 32, 128, 4096), (12, 32, 32, 128, 16384)]
WAVES += [(B, 32, 8, 128, L) for B, L in ((64, 4096), (64, 16384), (128, 4096))]


def main():
    args = sys.argv[1:]
    shapes = SHAPES
    if args[:1] == ["--shapes"]:
        shapes = {"bench": SHAPES, "waves": WAVES}[args[1]]
        args = args[2:]
    variants = args or DEFAULT
    timer, how = make_timer(torch.device("cuda"), 10, 40)
    print(f"# decode variants, {torch.cuda.get_device_name()}, fp16, {how}; GB/s (ratio to SDPA default) [max diff]")
    print("| B, Hq/Hkv, D, L | SDPA | " + " | ".join(v or "default" for v in variants) + " |")
    print("|---|---:|" + "---:|" * len(variants))
    for B, Hq, Hkv, D, L in shapes:
        q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.float16)
        k, v = (torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.float16) for _ in range(2))
        gqa = Hq != Hkv
        nbytes = decode_bytes(B, Hkv, L, D, 2)

        def sdpa():
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)

        def mine():
            with fm.use_kernel("decode"):
                return fm.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        ref = sdpa().float()
        t_ref0 = timer(sdpa)
        cells = []
        for var in variants:
            os.environ["FLASHMIN_DECODE_EXP"] = var
            out = torch.full_like(ref, float("nan"))
            out.copy_(mine())
            diff = (out - ref).abs().max().item()
            cells.append((timer(mine), diff))
        os.environ.pop("FLASHMIN_DECODE_EXP", None)
        t_ref = (t_ref0 + timer(sdpa)) / 2
        row = [f"{nbytes / (t * 1e6):.0f} ({t_ref / t:.3f}x) [{d:.0e}]" for t, d in cells]
        print(f"| {B}, {Hq}/{Hkv}, {D}, {L} | {nbytes / (t_ref * 1e6):.0f} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
