"""One call each of flashmin's decode kernel and SDPA's default (cuDNN on the H100) on a decode
shape, inside cudaProfilerStart/Stop, for ncu to compare:

    ncu --profile-from-start off --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section LaunchStats --section Occupancy python scripts/profile_decode.py [H] [D] [L] [flush]

With "flush", each profiled call follows a 256 MB memset, as in the benchmark's timer (run ncu
with --cache-control none to keep the dirty L2 lines that leaves).
"""
import sys

import torch

import flashmin_nn as fm

H = int(sys.argv[1]) if len(sys.argv) > 1 else 32
D = int(sys.argv[2]) if len(sys.argv) > 2 else 128
L = int(sys.argv[3]) if len(sys.argv) > 3 else 16384
FLUSH = len(sys.argv) > 4 and sys.argv[4] == "flush"
B = 8
flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.float16) for _ in range(2))
for _ in range(3):   # warm-up: plans, workspaces, cuDNN graphs
    with fm.use_kernel("decode"):
        fm.scaled_dot_product_attention(q, k, v)
    torch.nn.functional.scaled_dot_product_attention(q, k, v)
torch.cuda.synchronize()
torch.cuda.profiler.start()
if FLUSH:
    flush.zero_()
with fm.use_kernel("decode"):
    fm.scaled_dot_product_attention(q, k, v)
if FLUSH:
    flush.zero_()
torch.nn.functional.scaled_dot_product_attention(q, k, v)
torch.cuda.synchronize()
torch.cuda.profiler.stop()
