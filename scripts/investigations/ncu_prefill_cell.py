"""One of the bench's prefill cells for ncu: flashmin ("fm", prefill_sm90 under "auto") or SDPA
forced to cuDNN ("cudnn"), fp16, B*N = 16384, H*D = 2048.

    ncu --clock-control none --kernel-name regex:'prefill_sm90|cudnn' --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats --section SourceCounters -o rep \
        python scripts/investigations/ncu_prefill_cell.py fm 64 1 512      (impl, hdim, causal 0/1, N)
    python scripts/investigations/ncu_stall_top.py rep.ncu-rep             (where the warps wait, by SASS line)

Three calls, each after a 256 MB write that flushes the L2; the third is the one measured.
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm
from prefill_cells import prefill_cell  # this folder is on the path when run as a script

impl, D, causal, N = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
_, q, k, v = prefill_cell(D, causal, N, torch.float16)
flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
for _ in range(3):
    flush.fill_(1)
    if impl == "fm":
        fm.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
torch.cuda.synchronize()
print(f"{impl} D={D} causal={causal} N={N}: done")
