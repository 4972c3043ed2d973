"""Which prefill_sm90 launch choice is faster, switched per call in one process beside cuDNN.

    git apply docs/results/2026-12-02-h200-7255f5d/launch-knob.patch   (FMX_EXP, read at every call)
    python scripts/investigations/prefill_launch_ab.py [--rounds 3] [--dtype fp16|bf16] [--cells 128:0:8192,...]

Settings: "" the committed rule; hdim 64 "p64" / "n64" the 192-row tiles persistent / one block
per tile; hdim 128 "p128" / "n128" 128-key tiles persistent / not, "p176" / "n176" 176-key tiles
persistent / not (without causality from 4k keys only). FMX_SETTINGS (comma list, "" first)
names the settings the applied patch knows: launch-knob.patch (on 7255f5d) all but n176,
launch-knob-2.patch (on c330b90) p128, n176 and p176. Every round times each setting (the order
reversed in odd rounds) and cuDNN; the line per cell gives the medians over rounds, the ratio to
cuDNN's median and the spread (max / min - 1) of each over its rounds.
"""
import argparse
import os
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer
from prefill_cells import parse_cells, prefill_cell  # this folder is on the path when run as a script

CELLS = [(64, False, 2048), (64, False, 4096), (64, False, 8192), (64, False, 16384), (64, True, 4096), (64, True, 8192),
         (128, False, 4096), (128, False, 8192), (128, False, 16384), (128, True, 2048), (128, True, 4096), (128, True, 8192),
         (128, True, 16384)]
SETTINGS = {64: ["", "p64", "n64"], 128: ["", "p128", "n128", "p176", "n176"]}
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
ap.add_argument("--cells", help="hdim:causal(0/1):N,... (default: the list above)")
args = ap.parse_args()
rounds, dtype = args.rounds, torch.float16 if args.dtype == "fp16" else torch.bfloat16
KNOWN = set(os.environ.get("FMX_SETTINGS", ",p64,n64,p128,n128,p176").split(","))   # those the applied patch knows
if args.cells:
    CELLS = parse_cells(args.cells)
timer, _ = make_timer(torch.device("cuda"), 25, 100)
print(f"# {args.dtype}, {rounds} rounds")
for D, causal, N in CELLS:
    flops, q, k, v = prefill_cell(D, causal, N, dtype)
    sets = [s for s in SETTINGS[D] if s in KNOWN and (causal is False or s not in ("p176", "n176"))]
    times = {s: [] for s in sets + ["cudnn"]}
    for r in range(rounds):
        for s in (sets if r % 2 == 0 else sets[::-1]):
            if s:
                os.environ["FMX_EXP"] = s
            else:
                os.environ.pop("FMX_EXP", None)
            times[s].append(timer(lambda: fm.scaled_dot_product_attention(q, k, v, is_causal=causal)))
        os.environ.pop("FMX_EXP", None)
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            times["cudnn"].append(timer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)))
    med = {s: statistics.median(t) for s, t in times.items()}
    row = " | ".join(f"{s or 'default'} {flops / med[s] / 1e9:.0f} TF ({med['cudnn'] / med[s]:.3f}x cuDNN; "
                     f"spread {max(times[s]) / min(times[s]) - 1:.1%})" for s in sets)
    print(f"D={D} causal={int(causal)} N={N}: {row} | cudnn {flops / med['cudnn'] / 1e9:.0f} TF "
          f"(spread {max(times['cudnn']) / min(times['cudnn']) - 1:.1%})", flush=True)
    q = k = v = None   # freed before the next cell
