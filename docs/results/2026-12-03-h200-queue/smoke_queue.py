"""A few prefill_sm90 calls with the tile queue off and on (FMX_DYN, read per call) against SDPA's
math in float32: stops at the first mismatch; run under `timeout` (a hang is the failure to catch)."""
import os
import torch
import torch.nn.functional as F
import flashmin_nn as fm

torch.manual_seed(0)
bad = 0
for dyn in ("0", "1"):
    os.environ["FMX_DYN"] = dyn
    for D, causal, N, B, H in [(64, True, 512, 4, 8), (64, False, 1000, 2, 8), (128, True, 1025, 2, 8), (64, True, 2048, 2, 16),
                               (128, False, 97, 3, 4), (256, True, 1000, 1, 8), (64, True, 17, 300, 1)]:
        for dt in (torch.float16, torch.bfloat16):
            q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=dt) for _ in range(3))
            with fm.use_kernel("prefill_sm90"):
                for _ in range(3):
                    o = fm.scaled_dot_product_attention(q, k, v, is_causal=causal)
            ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
            err = (o.float() - ref).abs().max().item()
            ok = err < 2e-2 and torch.isfinite(o).all().item()
            bad += not ok
            print(f"FMX_DYN={dyn} D={D} causal={causal} N={N} B={B} H={H} {dt}: err {err:.2e} {'ok' if ok else 'FAIL'}", flush=True)
print("smoke failures:", bad)
raise SystemExit(1 if bad else 0)
