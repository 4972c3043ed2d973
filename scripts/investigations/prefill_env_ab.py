"""One experiment knob of flashmin's prefill, switched per call in one process beside cuDNN.

    git apply docs/results/2026-12-02-h200-c88936e/rescale-knob.patch   (FMX_RESCALE, read at every call)
    python scripts/investigations/prefill_env_ab.py --env FMX_RESCALE --values 8,-1 [--rounds 3] [--dtype fp16|bf16]
        [--cells 64:0:512,...] [--alibi] [--softcap 30] [--window 256]

The bench's prefill shapes (B*N = 16k tokens, H*D = 2048, (B, H, N, D) inputs). Every round times
each value of the variable (the order reversed in odd rounds) and cuDNN (SDPA forced to it), with
flashmin_nn.bench.timing (L2 flushed); the line per cell gives the medians over rounds in TFLOP/s,
the ratio to cuDNN's median and the spread (max / min - 1) over rounds. Each value's output is
checked against the first value's. --alibi: flashmin's calls carry ALiBi slopes (one per head, in
[0.05, 0.55]); cuDNN, which has no ALiBi, runs plain, and so does a flashmin call without the slopes
("plain"), to read the option's cost against. --softcap C: the same with flashmin's calls capped at C;
--window W: with a window of W keys to the left, (W, 0).
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

ap = argparse.ArgumentParser()
ap.add_argument("--env", required=True)
ap.add_argument("--values", required=True, help="comma list; the first is the reference for the output check")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
ap.add_argument("--alibi", action="store_true", help="flashmin's calls with ALiBi slopes (and a plain flashmin call beside)")
ap.add_argument("--softcap", type=float, default=0.0, help="flashmin's calls with this softcap (and a plain flashmin call beside)")
ap.add_argument("--window", type=int, default=-1, help="flashmin's calls with window_size (W, 0) (and a plain flashmin call beside)")
ap.add_argument("--cells", default="64:0:512,64:0:1024,64:0:4096,64:0:16384,64:1:512,64:1:1024,64:1:2048,64:1:4096,"
                                   "64:1:16384,128:0:512,128:0:1024,128:0:2048,128:0:16384,128:1:1024,128:1:16384,"
                                   "256:0:2048,256:1:4096", help="hdim:causal(0/1):N,...")
args = ap.parse_args()
values = args.values.split(",")
dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
cells = parse_cells(args.cells)
timer, method = make_timer(torch.device("cuda"), 25, 100)
print(f"# {args.env} in {values}, {args.dtype}, {args.rounds} rounds, {torch.cuda.get_device_name()}, {method}")
for D, causal, N in cells:
    flops, q, k, v = prefill_cell(D, causal, N, dtype)
    slopes = torch.rand(q.shape[1], device="cuda") * 0.5 + 0.05 if args.alibi else None
    plain = lambda: fm.scaled_dot_product_attention(q, k, v, is_causal=causal)
    option = args.alibi or args.softcap > 0 or args.window >= 0
    kw = dict(alibi_slopes=slopes, softcap=args.softcap, **(dict(window_size=(args.window, 0)) if args.window >= 0 else {}))
    call = (lambda: fm.attention(q, k, v, is_causal=causal, **kw)) if option else plain
    ref = None
    for val in values:
        os.environ[args.env] = val
        out = call().float()
        if ref is None:
            ref = out
        diff = (out - ref).abs().max().item()
        assert diff < 2e-2, f"D={D} causal={causal} N={N} {args.env}={val}: max diff {diff} against {values[0]}"
    times = {val: [] for val in values + ["cudnn"] + (["plain"] if option else [])}
    for r in range(args.rounds):
        for val in (values if r % 2 == 0 else values[::-1]):
            os.environ[args.env] = val
            times[val].append(timer(call))
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            times["cudnn"].append(timer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)))
        if option:
            times["plain"].append(timer(plain))
    os.environ.pop(args.env, None)
    med = {s: statistics.median(t) for s, t in times.items()}
    row = " | ".join(f"{val}: {flops / med[val] / 1e9:.0f} TF ({med['cudnn'] / med[val]:.3f}x cuDNN, "
                     f"{med[values[0]] / med[val]:.3f}x {values[0]}; spread {max(times[val]) / min(times[val]) - 1:.1%})"
                     for val in values)
    extra = (f" | plain flashmin {flops / med['plain'] / 1e9:.0f} TF ({med['plain'] / med[values[0]]:.3f}x of its rate "
             f"with the first value)") if option else ""
    print(f"D={D} causal={int(causal)} N={N}: {row} | cudnn {flops / med['cudnn'] / 1e9:.0f} TF "
          f"(spread {max(times['cudnn']) / min(times['cudnn']) - 1:.1%}){extra}", flush=True)
    q = k = v = ref = out = None   # freed before the next cell
