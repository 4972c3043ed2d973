"""One call each of flashmin's tensor-core kernel and SDPA's flash backend, for ncu to compare.

    ncu --section WarpStateStats --section SchedulerStats --section Occupancy \
        -k regex:"prefill_kernel|flash_fwd" python scripts/profile_tc.py [hdim] [N]
"""
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm

D = int(sys.argv[1]) if len(sys.argv) > 1 else 128
N = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
B, H = 16384 // N, 2048 // D
q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.float16) for _ in range(3))
with fm.use_kernel("tensor_core"):
    fm.scaled_dot_product_attention(q, k, v)
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    torch.nn.functional.scaled_dot_product_attention(q, k, v)
torch.cuda.synchronize()
