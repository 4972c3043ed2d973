"""One call each of flashmin's decode kernel and SDPA's default (cuDNN on the H100) on a decode
shape, inside cudaProfilerStart/Stop, for ncu to compare:

    ncu --profile-from-start off --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section LaunchStats --section Occupancy python scripts/profile_decode.py [H] [D] [L]
"""
import sys

import torch

import flashmin_nn as fm

H = int(sys.argv[1]) if len(sys.argv) > 1 else 32
D = int(sys.argv[2]) if len(sys.argv) > 2 else 128
L = int(sys.argv[3]) if len(sys.argv) > 3 else 16384
B = 8
q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.float16) for _ in range(2))
for _ in range(3):   # warm-up: plans, workspaces, cuDNN graphs
    with fm.use_kernel("decode"):
        fm.scaled_dot_product_attention(q, k, v)
    torch.nn.functional.scaled_dot_product_attention(q, k, v)
torch.cuda.synchronize()
torch.cuda.profiler.start()
with fm.use_kernel("decode"):
    fm.scaled_dot_product_attention(q, k, v)
torch.nn.functional.scaled_dot_product_attention(q, k, v)
torch.cuda.synchronize()
torch.cuda.profiler.stop()
