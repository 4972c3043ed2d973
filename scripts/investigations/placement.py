"""Does flashmin's prefill time depend on where its tensors sit in memory?

    python scripts/investigations/placement.py [--repeats 3]

The bench gives the same flashmin prefill cell up to 6% different times from one process to the
next while cuDNN's agree within 1% (docs/perf-notes.md, Hopper prefill v9). This times both, in
one process, on the same shapes placed at several addresses: before each placement a pad tensor
of a different size is allocated and kept, so q, k, v and the output land on other pages. Each
placement is timed `--repeats` times (flashmin and cuDNN alternating), so the spread across
placements can be set against the spread within one.
Output: one line per (cell, placement, repeat): ms and TFLOP/s of each, fm / cuDNN; then per
cell the min-max range of flashmin's and cuDNN's medians across placements.
"""
import argparse
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer

CELLS = ((64, False, 2048), (64, False, 4096), (128, False, 2048), (128, False, 4096), (128, True, 2048))
PADS_MB = (0, 2, 34, 130, 258)   # the pad allocated before each placement (kept alive)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    timer, method = make_timer(torch.device("cuda"), 25, 100)
    print(f"# placement study, {torch.cuda.get_device_name()}, fp16, {method}")
    pads = []
    summary = []
    for D, causal, N in CELLS:
        B, H = 16384 // N, 2048 // D
        flops = 4 * B * H * N * N * D / (2 if causal else 1)
        fm_meds, cu_meds = [], []
        for pad in PADS_MB:
            pads.append(torch.empty(pad * 2**20 + 4096, dtype=torch.uint8, device="cuda"))
            q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.float16) for _ in range(3))
            f_fm = lambda: fm.scaled_dot_product_attention(q, k, v, is_causal=causal)
            def f_cu():
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            err = (f_fm().float() - f_cu().float()).abs().max().item()
            t_fm, t_cu = [], []
            for r in range(args.repeats):
                t_fm.append(timer(f_fm))
                t_cu.append(timer(f_cu))
                print(f"D={D} causal={int(causal)} N={N} pad={pad}MB q@{q.data_ptr() % 2**32:#010x} rep {r}: "
                      f"fm {t_fm[-1]:.4f} ms {flops / t_fm[-1] / 1e9:.0f} TF | cudnn {t_cu[-1]:.4f} ms "
                      f"{flops / t_cu[-1] / 1e9:.0f} TF | fm/cudnn {t_cu[-1] / t_fm[-1]:.3f} | diff {err:.1e}", flush=True)
            fm_meds.append(statistics.median(t_fm))
            cu_meds.append(statistics.median(t_cu))
            q = k = v = None   # freed before the next placement
        summary.append(f"D={D} causal={int(causal)} N={N}: fm {min(fm_meds):.4f}-{max(fm_meds):.4f} ms "
                       f"(range {max(fm_meds) / min(fm_meds) - 1:.1%}), cudnn {min(cu_meds):.4f}-{max(cu_meds):.4f} ms "
                       f"(range {max(cu_meds) / min(cu_meds) - 1:.1%})")
        pads.clear()
        torch.cuda.empty_cache()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
