"""Where a decode call's time goes at the block level: every block's start and end, its warps' loop
ends and its first tile's landing, read from the GPU's global timer; and a block barrier every n
tiles a warp, switched per call beside SDPA's default.

    git apply docs/results/2026-12-03-h200-epilogue/exp-knob.patch (or exp-knob-2.patch)
    python scripts/investigations/decode_timeline.py [--rounds 5] [--sync 0,16,64]

The knob patch writes 8 words a block to the buffer at FLASHMIN_DECODE_TL (start, end, SM, the four
warps' loop ends, warp 0's first tile landed) and adds the barrier of FLASHMIN_DECODE_SYNC. Cells:
the bench's decode layout, (B, H, L, D) inputs, fp16, one query row. Timing: flashmin_nn.bench.timing
(L2 flushed before every call), each round the sync values then SDPA's default, the order reversed
in odd rounds; medians over rounds. The timeline is one call after an L2 flush.
"""
import argparse
import os
import statistics

import torch
import torch.nn.functional as F

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--sync", default="0,16,64", help="FLASHMIN_DECODE_SYNC values (0: no barrier)")
ap.add_argument("--cells", default="8:32:32:128:65536,8:32:32:128:16384,64:32:32:128:4096,8:32:32:128:4096",
                help="B:Hq:Hkv:D:L,...")
args = ap.parse_args()
syncs = args.sync.split(",")
dev = torch.device("cuda")
timer, method = make_timer(dev, 25, 100)
flush = torch.empty(256 * 2**20, dtype=torch.int8, device=dev)
print(f"# decode timeline, {torch.cuda.get_device_name()}, {method}, sync values {syncs}, {args.rounds} rounds")


def q_(xs, f):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(f * (len(xs) - 1) + 0.5))]


for cell in args.cells.split(","):
    B, Hq, Hkv, D, L = map(int, cell.split(":"))
    q = torch.randn(B, Hq, 1, D, device=dev, dtype=torch.float16)
    k = torch.randn(B, Hkv, L, D, device=dev, dtype=torch.float16)
    v = torch.randn(B, Hkv, L, D, device=dev, dtype=torch.float16)
    gqa = Hq != Hkv
    nbytes = 2 * k.numel() * k.element_size()
    fmc = lambda: fm.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    ref = sdpa().float()
    for s in syncs:
        os.environ["FLASHMIN_DECODE_SYNC"] = s
        err = (fmc().float() - ref).abs().max().item()
        assert err < 1e-2, f"{cell} sync={s}: max error {err}"
    times = {s: [] for s in syncs + ["sdpa"]}
    for r in range(args.rounds):
        order = syncs + ["sdpa"]
        for name in (order if r % 2 == 0 else order[::-1]):
            if name == "sdpa":
                times[name].append(timer(sdpa))
            else:
                os.environ["FLASHMIN_DECODE_SYNC"] = name
                times[name].append(timer(fmc))
    os.environ["FLASHMIN_DECODE_SYNC"] = "0"
    med = {n: statistics.median(t) for n, t in times.items()}
    line = "  ".join(f"sync={s} {med[s] * 1e3:.1f} us ({med['sdpa'] / med[s]:.3f}x)" for s in syncs)
    print(f"B={B} Hq={Hq} Hkv={Hkv} D={D} L={L}: sdpa {med['sdpa'] * 1e3:.1f} us ({nbytes / med['sdpa'] / 1e6:.0f} GB/s); {line}")

    # One call's timeline.
    buf = torch.zeros(8 * 65536, dtype=torch.int64, device=dev)
    os.environ["FLASHMIN_DECODE_TL"] = str(buf.data_ptr())
    flush.zero_()
    fmc()
    torch.cuda.synchronize()
    del os.environ["FLASHMIN_DECODE_TL"]
    t = buf.view(-1, 8).cpu()
    t = t[t[:, 0] > 0].tolist()
    t0 = min(b[0] for b in t)
    starts = [(b[0] - t0) / 1e3 for b in t]
    ends = [(b[1] - t0) / 1e3 for b in t]
    span = max(ends)
    durs = [e - s for s, e in zip(starts, ends)]
    wspread = [(max(b[3:7]) - min(b[3:7])) / 1e3 for b in t]
    ramp = [(b[7] - b[0]) / 1e3 for b in t]
    tail = [(b[1] - max(b[3:7])) / 1e3 for b in t]
    sms = {}
    for b in t:
        sms.setdefault(b[2], []).append(b)
    print(f"  {len(t)} blocks on {len(sms)} SMs, span {span:.1f} us (event median {med[syncs[0]] * 1e3:.1f} us); "
          f"starts p50/p90/max {q_(starts, .5):.1f}/{q_(starts, .9):.1f}/{max(starts):.1f} us; "
          f"ends min/p10/p50/max {min(ends):.1f}/{q_(ends, .1):.1f}/{q_(ends, .5):.1f}/{max(ends):.1f} us")
    print(f"  block time p10/p50/p90 {q_(durs, .1):.1f}/{q_(durs, .5):.1f}/{q_(durs, .9):.1f} us; first tile landed after "
          f"p50/p90 {q_(ramp, .5):.2f}/{q_(ramp, .9):.2f} us; warps' loop ends spread p50/p90/max {q_(wspread, .5):.2f}/"
          f"{q_(wspread, .9):.2f}/{max(wspread):.2f} us; last loop end to block end p50 {q_(tail, .5):.2f} us")
    # SM-time used: each SM's summed block time over the span, per resident block slot.
    per_sm = [sum((b[1] - b[0]) / 1e3 for b in v) for v in sms.values()]
    print(f"  SM busy (summed block time / span) p10/p50/max {q_(per_sm, .1) / span:.3f}/{q_(per_sm, .5) / span:.3f}/"
          f"{max(per_sm) / span:.3f}; blocks per SM {min(len(v) for v in sms.values())}-{max(len(v) for v in sms.values())}"
          )
    # Blocks running at 20 points of the span.
    edges = [span * i / 20 for i in range(21)]
    running = [sum(1 for s, e in zip(starts, ends) if s <= (edges[i] + edges[i + 1]) / 2 < e) for i in range(20)]
    print(f"  blocks running at 20 points of the span: {running}")
    buf = None
    torch.cuda.empty_cache()
