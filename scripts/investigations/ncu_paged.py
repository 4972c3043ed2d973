"""One decode call for ncu: B=8, H=12, D=64, 16k keys, one query; a contiguous cache (argument 0)
or the same keys in shuffled pages of P keys (argument P).

    ncu --clock-control none --kernel-name regex:decode_kernel --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
        python scripts/investigations/ncu_paged.py 16

Three calls, each after a 256 MB write that flushes the L2; the third is the one measured.
"""
import os
import sys

import torch

import flashmin_nn as fm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_paged import shuffled_pages  # noqa: E402  (scripts/ is not a package)

dt = torch.float16
B, Hq, Hkv, D, L = 8, 12, 12, 64, 16384
P = int(sys.argv[1])
kc = torch.randn(B, L, Hkv, D, device="cuda", dtype=dt); vc = torch.randn_like(kc)
q = torch.randn(B, 1, Hq, D, device="cuda", dtype=dt)
sl = torch.full((B,), L, dtype=torch.int32, device="cuda")
if P == 0:
    a = (kc, vc, None)
else:
    a = shuffled_pages(kc, vc, P, torch.Generator(device="cuda").manual_seed(0))
flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
for _ in range(3):
    flush.zero_()
    fm.flash_attn_with_kvcache(q, a[0], a[1], cache_seqlens=sl, block_table=a[2], causal=True, check_lengths=False)
torch.cuda.synchronize()
