"""How much host time an eager paged decode call costs, against the same call on a contiguous cache.

    python scripts/investigations/paged_host.py

B=8, H=12, D=64, 1k keys, one query (the cell where scripts/bench_paged.py's eager column and its
graph-replay column part most). Prints the host time per call of 200 back-to-back calls
(enqueue only, then with the GPU), torch.profiler's op table for ten calls of the contiguous and
the 16-key-page cache, and a cProfile of 200 paged calls.
"""
import cProfile
import os
import pstats
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

import flashmin_nn as fm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_paged import shuffled_pages  # noqa: E402  (scripts/ is not a package)

dt = torch.float16
B, Hq, Hkv, D, L = 8, 12, 12, 64, 1024
kc = torch.randn(B, L, Hkv, D, device="cuda", dtype=dt); vc = torch.randn_like(kc)
q = torch.randn(B, 1, Hq, D, device="cuda", dtype=dt)
sl = torch.full((B,), L, dtype=torch.int32, device="cuda")
cases = {"contig": (kc, vc, None)}
for P in (16, 256):
    cases[f"P{P}"] = shuffled_pages(kc, vc, P)
run = lambda a: fm.flash_attn_with_kvcache(q, a[0], a[1], cache_seqlens=sl, block_table=a[2], causal=True, check_lengths=False)
for name, a in cases.items():
    for _ in range(20): run(a)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(200): run(a)
    t1 = time.perf_counter(); torch.cuda.synchronize(); t2 = time.perf_counter()
    print(f"{name}: host {1e6*(t1-t0)/200:.1f} us/call enqueue, {1e6*(t2-t0)/200:.1f} us/call with the GPU")
for name in ("contig", "P16"):
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10): run(cases[name])
        torch.cuda.synchronize()
    print(f"=== {name}")
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=60))
pr = cProfile.Profile(); pr.enable()
for _ in range(200): run(cases["P16"])
pr.disable(); torch.cuda.synchronize()
pstats.Stats(pr).sort_stats("tottime").print_stats(18)
