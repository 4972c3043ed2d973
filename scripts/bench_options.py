"""flash_attn's options in the CUDA kernels against the plain call of the same shape, same run.

    python scripts/bench_options.py [--dtype fp16|bf16] [--quick] [--json out.json]

Prefill (FlashAttention's convention, B * N = 16384 tokens, H * D = 2048, causal) and decode (one
query over a (B, Hkv, L, D) cache, GQA 32/8): flashmin "auto" plain, then with a local window,
softcap, ALiBi, attention sinks, and all four at once. Each cell: the median time (L2 flushed
before each call, flashmin_nn.bench.timing), the rate over the work the call really has (for a
window, the keys inside it: FLOPs or bytes proportional), the time ratio against plain (plain /
this: < 1 is slower) and the ratio of rates (this rate / plain rate: 1.0 = as efficient per key
as plain). Every result is checked once against float64 on sampled (batch, head, row) triples,
with the options' definitions written here (the oracle of tests/test_options_cpu.py's rule):
err = max|out - ref| / max|ref|, BAD above the dtype's tolerance.
"""
import argparse
import json
import math
import sys

import torch

import flashmin_nn as fm
from flashmin_nn.bench.timing import log, make_timer

K = 1024
TOL = {torch.float16: 2e-2, torch.bfloat16: 6e-2}


def visible(rows, S, offset, left, right, causal):
    """(len(rows), S) bool: query i (diagonal key i + offset) sees key j, by the window and causal."""
    i = torch.as_tensor(rows, dtype=torch.float64)[:, None]
    j = torch.arange(S, dtype=torch.float64)[None, :]
    d = i + offset
    ok = torch.ones(len(rows), S, dtype=torch.bool)
    if causal:
        ok &= j <= d
    if left >= 0:
        ok &= j >= d - left
    if right >= 0:
        ok &= j <= d + right
    return ok


def seen_keys(L, S, offset, left, right, causal):
    """The number of (query row, key) pairs a call computes, out of L rows and S keys."""
    return visible(range(L), S, offset, left, right, causal).sum().item()


def reference(q, k, v, b, h, rows, offset, causal, left, right, softcap, slopes, sinks):
    """float64 attention of query head h of batch b, rows `rows`, with the options."""
    Hq, Hkv = q.shape[1], k.shape[1]
    g = h // (Hq // Hkv)
    qs = q[b, h, rows].double().cpu()
    ks, vs = k[b, g].double().cpu(), v[b, g].double().cpu()
    s = qs @ ks.T / math.sqrt(q.shape[-1])
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if slopes is not None:
        dist = torch.arange(ks.shape[0], dtype=torch.float64)[None, :] - torch.tensor(rows, dtype=torch.float64)[:, None] - offset
        s = s - float(slopes[h]) * dist.abs()
    s = s.masked_fill(~visible(rows, ks.shape[0], offset, left, right, causal), -math.inf)
    if sinks is not None:
        s = torch.cat([s, torch.full((len(rows), 1), float(sinks[h]), dtype=torch.float64)], 1)
        vs = torch.cat([vs, torch.zeros(1, vs.shape[1], dtype=torch.float64)])
    m = s.amax(1, keepdim=True).clamp_min(-1e300)
    p = torch.exp(s - m)
    return (p @ vs) / p.sum(1, keepdim=True)


def check(out, q, k, v, offset, causal, opts):
    B, Hq, L, _ = q.shape
    rows = sorted({0, L // 3, L // 2, L - 1} | set(range(0, L, max(1, L // 16))))
    err, scale = 0.0, 1e-30
    for b in sorted({0, B - 1}):
        for h in sorted({0, Hq - 1}):
            ref = reference(q, k, v, b, h, rows, offset, causal, opts.get("left", -1), opts.get("right", -1),
                            opts.get("softcap", 0.0), opts.get("slopes"), opts.get("sinks"))
            got = out[b, h, rows].double().cpu()
            if not torch.isfinite(got).all():
                return math.inf
            err = max(err, (got - ref).abs().max().item())
            scale = max(scale, ref.abs().max().item())
    return err / scale


def variants(Hq, dev, window):
    slopes = torch.rand(Hq, device=dev) * 0.5 + 0.05
    sinks = torch.randn(Hq, device=dev)
    return [
        ("plain", {}),
        (f"window ({window}, 0)", {"left": window, "right": 0}),
        ("softcap 30", {"softcap": 30.0}),
        ("alibi", {"slopes": slopes}),
        ("sinks", {"sinks": sinks}),
        ("all four", {"left": window, "right": 0, "softcap": 30.0, "slopes": slopes, "sinks": sinks}),
    ]


def call(q, k, v, offset, causal, opts):
    window = (opts.get("left", -1), opts.get("right", -1))
    return fm.attention(q, k, v, is_causal=causal, causal_offset=offset, window_size=window,
                        softcap=opts.get("softcap", 0.0), alibi_slopes=opts.get("slopes"), sinks=opts.get("sinks"))


def run_cell(timer, label, q, k, v, offset, causal, window, work_per_key, unit, dtype):
    """One shape: every variant, the plain one first. work_per_key: FLOPs or bytes per seen key."""
    L, S = q.shape[2], k.shape[2]
    rows, plain_ms, plain_rate = [], None, None
    for name, opts in variants(q.shape[1], q.device, window):
        # prefill: every (row, key) pair computed; decode: the keys read (K and V once per kv head)
        keys = seen_keys(L if unit == "TFLOP/s" else 1, S, offset, opts.get("left", -1), opts.get("right", -1), causal)
        work = keys * work_per_key
        out = call(q, k, v, offset, causal, opts)
        err = check(out, q, k, v, offset, causal, opts)
        ms = timer(lambda: call(q, k, v, offset, causal, opts))
        rate = work / ms / 1e9 if unit == "TFLOP/s" else work / ms / 1e6
        if plain_ms is None:
            plain_ms, plain_rate = ms, rate
        bad = "" if err <= TOL[dtype] else " BAD"
        rows.append({"cell": label, "variant": name, "ms": ms, "rate": rate, "unit": unit,
                     "time_vs_plain": plain_ms / ms, "rate_vs_plain": rate / plain_rate, "err": err, "bad": bool(bad)})
        log(f"{label} {name}: {ms:.3f} ms {rate:.1f} {unit} x{plain_ms / ms:.3f} rate x{rate / plain_rate:.3f} err {err:.1e}{bad}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="fp16", choices=("fp16", "bf16"))
    ap.add_argument("--quick", action="store_true", help="one prefill length and one decode length")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_options.py needs a CUDA device")
        return 1
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    dev = torch.device("cuda")
    torch.manual_seed(0)
    timer, method = make_timer(dev, 25, 100)
    rows = []
    for D in (64, 128):
        for N in ((4 * K,) if args.quick else (2 * K, 8 * K)):
            B, H = 16384 // N, 2048 // D
            q, k, v = (torch.randn(B, H, N, D, device=dev, dtype=dtype) for _ in range(3))
            rows += run_cell(timer, f"prefill D={D} N={N} B={B} H={H}", q, k, v, 0, True, N // 8, 4 * B * H * D,
                             "TFLOP/s", dtype)
            del q, k, v
    for L in ((16 * K,) if args.quick else (4 * K, 32 * K)):
        B, Hq, Hkv, D = 8, 32, 8, 128
        q = torch.randn(B, Hq, 1, D, device=dev, dtype=dtype)
        k, v = (torch.randn(B, Hkv, L, D, device=dev, dtype=dtype) for _ in range(2))
        rows += run_cell(timer, f"decode B={B} Hq={Hq} Hkv={Hkv} D={D} L={L}", q, k, v, L - 1, True, L // 4,
                         2 * B * Hkv * D * dtype.itemsize, "GB/s", dtype)
        del q, k, v
    print(f"# flashmin options vs plain, {torch.cuda.get_device_name()}, {args.dtype}, timer: {method}")
    print("| cell | variant | ms | rate | x time vs plain | x rate vs plain | err |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cell']} | {r['variant']} | {r['ms']:.3f} | {r['rate']:.1f} {r['unit']} | {r['time_vs_plain']:.3f} "
              f"| {r['rate_vs_plain']:.3f} | {r['err']:.1e}{' BAD' if r['bad'] else ''} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "dtype": args.dtype, "timer": method, "rows": rows}, f,
                      indent=1, default=float)
    return 1 if any(r["bad"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
