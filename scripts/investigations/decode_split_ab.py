"""How many splits a decode grid smaller than the GPU should take on the H200, switched per call.

    git apply docs/results/2026-12-02-h200-c88936e/decode-split-knob.patch   (FMX_DSPLIT, read per call;
        on c88936e's rule; decode-split-knob-2.patch on the rule that replaced it)
    python scripts/investigations/decode_split_ab.py [--rounds 2] [--splits 1,2,3,4,6]

decode_plan.cu rule (a) decides how a (batch, head) grid under one block per SM splits its keys
("rule": c88936e's about one block per SM, measured on an H100; the H200 rule that followed from
this script's first run). FMX_DSPLIT=n asks for n splits instead (capped so that a warp keeps two
tiles). For each shape and cache length: the call through flash_attn_with_kvcache on a contiguous
(B, L, Hkv, D) cache and on 16-key pages shuffled over a pool (bench_paged.shuffled_pages), each
captured in a CUDA graph per setting (the plan is fixed at capture) and its replay timed with the L2
flushed (flashmin_nn.bench.timing); SDPA's default on the same keys in (B, H, L, D) beside it.
Every setting's output is checked against the default's.
"""
import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_graphs import capture  # noqa: E402
from bench_paged import shuffled_pages  # noqa: E402

SHAPES = [(8, 12, 12, 64, (1024, 4096, 16384, 65536)), (8, 32, 8, 128, (1024, 4096, 16384, 65536)),
          (1, 32, 32, 128, (4096, 32768)), (4, 12, 12, 64, (4096, 16384))]
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--splits", default="1,2,3,4,6", help="the values of --env to try beside the committed rule")
ap.add_argument("--env", default="FMX_DSPLIT", help="the experiment variable (FMX_NOEVICT: evict-first-policy.patch)")
ap.add_argument("--shapes", help="B:Hq:Hkv:D:L1/L2,... (default: the list above)")
args = ap.parse_args()
settings = [""] + args.splits.split(",")
if args.shapes:
    SHAPES = [(int(b), int(hq), int(hk), int(d), tuple(int(x) for x in ls.split("/")))
              for b, hq, hk, d, ls in (c.split(":") for c in args.shapes.split(","))]
timer, method = make_timer(torch.device("cuda"), 25, 100)
print(f"# decode {args.env} per call, {torch.cuda.get_device_name()}, fp16, {args.rounds} rounds, graph replay ({method})")
g = torch.Generator(device="cuda").manual_seed(0)
for B, Hq, Hkv, D, lens in SHAPES:
    for L in lens:
        k = torch.randn(B, L, Hkv, D, device="cuda", dtype=torch.float16)
        v = torch.randn_like(k)
        q = torch.randn(B, 1, Hq, D, device="cuda", dtype=torch.float16)
        seqlens = torch.full((B,), L, dtype=torch.int32, device="cuda")
        kp, vp, table = shuffled_pages(k, v, 16, g)
        nbytes = 2 * k.numel() * 2
        layouts = {"contig": (k, v, None), "P16": (kp, vp, table)}
        graphs, ref = {}, {}
        for name, (kc, vc, bt) in layouts.items():
            for s in settings:
                if s:
                    os.environ[args.env] = s
                else:
                    os.environ.pop(args.env, None)
                graph, out = capture(lambda: fm.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=seqlens, block_table=bt,
                                                                        causal=True, check_lengths=False))
                graph.replay()
                torch.cuda.synchronize()
                if s == "":
                    ref[name] = out.float().clone()
                diff = (out.float() - ref[name]).abs().max().item()
                assert diff < 5e-3, f"{name} splits={s}: max diff {diff}"
                graphs[(name, s)] = graph
        os.environ.pop(args.env, None)
        qs, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))   # SDPA's (B, H, L, D)
        times = {key: [] for key in graphs}
        times["sdpa"] = []
        keys = list(graphs)
        for r in range(args.rounds):
            for key in (keys if r % 2 == 0 else keys[::-1]):
                times[key].append(timer(graphs[key].replay))
            times["sdpa"].append(timer(lambda: F.scaled_dot_product_attention(qs, kt, vt, enable_gqa=Hq != Hkv)))
        med = {key: statistics.median(t) for key, t in times.items()}
        for name in layouts:
            row = " | ".join(f"{s or 'rule'} {med[(name, s)] * 1e3:.1f} us {nbytes / med[(name, s)] / 1e6:.0f} GB/s "
                             f"({med['sdpa'] / med[(name, s)]:.3f}x sdpa)" for s in settings)
            print(f"B={B} H={Hq}/{Hkv} D={D} L={L} {name}: {row}", flush=True)
        print(f"B={B} H={Hq}/{Hkv} D={D} L={L} sdpa {med['sdpa'] * 1e3:.1f} us", flush=True)
        graphs = k = v = kp = vp = table = kt = vt = None   # freed before the next cell
        torch.cuda.empty_cache()
