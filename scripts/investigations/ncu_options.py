"""One prefill call for ncu: causal, B=4, N=4096, H*D = 2048 (bench_options.py's quick cell), plain
or with one option (argument: plain, alibi, softcap, window).

    ncu --clock-control none --kernel-name regex:prefill_sm90 --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats --section InstructionStats \
        python scripts/investigations/ncu_options.py alibi [64|128]

Three calls, each after a 256 MB write that flushes the L2; the third is the one measured.
"""
import sys

import torch

import flashmin_nn as fm

what = sys.argv[1]
D = int(sys.argv[2]) if len(sys.argv) > 2 else 64
B, N, H = 4, 4096, 2048 // D
q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.float16) for _ in range(3))
opts = {"plain": {}, "alibi": dict(alibi_slopes=torch.rand(H, device="cuda") * 0.5 + 0.05),
        "softcap": dict(softcap=30.0), "window": dict(window_size=(512, 0))}[what]
flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
for _ in range(3):
    flush.fill_(1)
    fm.attention(q, k, v, is_causal=True, causal_offset=0, **opts)
torch.cuda.synchronize()
print(f"{what} D={D}: done")
