"""prefill_sm90 calls with the planned tail off and on (FMX_TAIL, read per call: 0 = the snake to the
end, 6 = the default plan) against SDPA's math in float32, over shapes whose walk runs several
rounds; stops at the end with the count of mismatches. Run under `timeout` (a hang is a failure)."""
import os
import torch
import torch.nn.functional as F
import flashmin_nn as fm

torch.manual_seed(0)
bad = 0
for tail in ("0", "6", "2"):
    os.environ["FMX_TAIL"] = tail
    for D, causal, N, B, H in [(64, True, 512, 32, 16), (64, True, 1000, 4, 16), (128, True, 1025, 4, 16),
                               (64, True, 2048, 8, 32), (64, False, 1000, 4, 16), (256, True, 1000, 4, 16),
                               (128, True, 97, 300, 1), (64, True, 17, 1000, 1)]:
        for dt in (torch.float16, torch.bfloat16):
            q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=dt) for _ in range(3))
            with fm.use_kernel("prefill_sm90"):
                for _ in range(2):
                    o = fm.scaled_dot_product_attention(q, k, v, is_causal=causal)
            ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
            err = (o.float() - ref).abs().max().item()
            ok = err < 2e-2 and torch.isfinite(o).all().item()
            bad += not ok
            print(f"FMX_TAIL={tail} D={D} causal={causal} N={N} B={B} H={H} {dt}: err {err:.2e} {'ok' if ok else 'FAIL'}",
                  flush=True)
print("smoke failures:", bad)
raise SystemExit(1 if bad else 0)
