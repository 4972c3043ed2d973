"""Compare kernel configurations side by side on the GPU: one child process per variant (the
variant is picked by an environment variable, read once by the extension), every variant timed
beside SDPA's flash and cuDNN backends and SDPA's default in the same process.

    python scripts/tune.py --env FLASHMIN_TC_VARIANT --variants 0,1,2 --suite prefill --dtype fp16
    python scripts/tune.py --env FLASHMIN_DECODE_VARIANT --variants 0,1 --suite decode
    python scripts/tune.py ... --suite decode --hdims 128 --seqlens 65536 --layout bshd --hkv 8
        (decode shapes: B=8, H=32 at D=128 and 12 at D=64 unless --heads; --hkv for grouped
        queries; --layout bshd for FlashAttention's (B, L, H, D) cache)

Prints one table: per shape, each variant's rate and its ratio to flash (prefill, TFLOP/s) or
to SDPA's default (decode, GB/s). Each cell is checked against SDPA's output (max abs diff).
"""
import argparse
import json
import os
import subprocess
import sys

PREFILL_N = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
DECODE_L = [1024, 4096, 16384, 65536]


def child(args):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import flashmin_nn as fm
    from flashmin_nn.bench import make_timer

    timer, _ = make_timer(torch.device("cuda"), 10, args.rep)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    rows = []
    gqa = args.suite == "decode" and args.hkv is not None

    def sdpa(backend):
        def run(q, k, v, causal):
            if backend is None:
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
        return run

    def flashmin(kernel):
        def run(q, k, v, causal):
            with fm.use_kernel(kernel):
                return fm.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
        return run

    if args.suite == "prefill":
        shapes = [(D, c, N) for D in args.hdims for c in (False, True) for N in (args.seqlens or PREFILL_N)]
        peers = {"flash": sdpa(SDPBackend.FLASH_ATTENTION), "cudnn": sdpa(SDPBackend.CUDNN_ATTENTION)}
        mine = flashmin("tensor_core")
    else:
        shapes = [(D, args.heads or H, L) for (H, D) in ((32, 128), (12, 64)) if D in args.hdims
                  for L in (args.seqlens or DECODE_L)]
        peers = {"sdpa": sdpa(None), "flash": sdpa(SDPBackend.FLASH_ATTENTION)}
        mine = flashmin("decode")
    for shape in shapes:
        if args.suite == "prefill":
            D, causal, N = shape
            B, H = 16384 // N, 2048 // D
            q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=dtype) for _ in range(3))
            work = 4 * B * H * N * N * D / (2 if causal else 1)
            unit = 1e9   # ms -> TFLOP/s
        else:
            D, H, L = shape
            B, causal = 8, False
            Hkv = args.hkv or H
            q = torch.randn(B, H, 1, D, device="cuda", dtype=dtype)
            if args.layout == "bshd":   # FlashAttention's cache layout, (B, L, Hkv, D), seen as (B, Hkv, L, D)
                k, v = (torch.randn(B, L, Hkv, D, device="cuda", dtype=dtype).transpose(1, 2) for _ in range(2))
            else:
                k, v = (torch.randn(B, Hkv, L, D, device="cuda", dtype=dtype) for _ in range(2))
            work = 2 * B * Hkv * L * D * q.element_size()
            unit = 1e6   # ms -> GB/s
        ref = peers["flash" if args.suite == "prefill" else "sdpa"](q, k, v, causal).float()
        out = mine(q, k, v, causal)
        err = (out.float() - ref).abs().max().item()
        row = {"shape": list(shape), "err": err}
        for name, fn in [("fm", mine), *peers.items()]:
            try:
                ms = timer(lambda: fn(q, k, v, causal))
            except RuntimeError as e:   # a peer backend that refuses this shape or layout: no rate (nan)
                print(f"{name} {shape}: {e}", file=sys.stderr)
                ms = float("nan")
            row[name] = work / ms / unit
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        del q, k, v, ref, out
    print(json.dumps(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", choices=["prefill", "decode"], default="prefill")
    ap.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    ap.add_argument("--env", default="FLASHMIN_TC_VARIANT")
    ap.add_argument("--variants", default="0")
    ap.add_argument("--rep", type=float, default=40)
    ap.add_argument("--hdims", type=lambda t: [int(x) for x in t.split(",")], default=[64, 128])
    ap.add_argument("--seqlens", type=lambda t: [int(x) for x in t.split(",")], default=None)
    ap.add_argument("--heads", type=int, default=None, help="decode: query heads (default: 32 at D=128, 12 at D=64)")
    ap.add_argument("--hkv", type=int, default=None, help="decode: kv heads (grouped-query attention; default: H)")
    ap.add_argument("--layout", choices=["bhld", "bshd"], default="bhld",
                    help="decode: K/V cache layout, (B, Hkv, L, D) or FlashAttention's (B, L, Hkv, D)")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args)
    results = {}
    for var in args.variants.split(","):
        env = dict(os.environ, **{args.env: var})
        cmd = [sys.executable, __file__, "--child", "--suite", args.suite, "--dtype", args.dtype, "--rep", str(args.rep),
               "--hdims", ",".join(map(str, args.hdims)), "--layout", args.layout]
        if args.heads:
            cmd += ["--heads", str(args.heads)]
        if args.hkv:
            cmd += ["--hkv", str(args.hkv)]
        if args.seqlens:
            cmd += ["--seqlens", ",".join(map(str, args.seqlens))]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"variant {var}: child failed with {proc.returncode}")
            continue
        results[var] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not results:
        return 1
    peer = "flash" if args.suite == "prefill" else "sdpa"
    first = next(iter(results.values()))
    others = [k for k in first[0] if k not in ("shape", "err", "fm")]
    head = ["shape"] + [f"v{v}" for v in results] + [f"v{v}/{peer}" for v in results] + others + ["max err"]
    layout = f" {args.layout}, Hkv={args.hkv or 'H'}" if args.suite == "decode" else ""
    print(f"\n{args.suite} {args.dtype}{layout} ({'TFLOP/s' if args.suite == 'prefill' else 'GB/s'}); "
          f"{args.env}; peers from variant {next(iter(results))}'s process")
    print(" | ".join(head))
    for i, row in enumerate(first):
        cells = [str(tuple(row["shape"]))]
        cells += [f"{results[v][i]['fm']:.0f}" for v in results]
        cells += [f"{results[v][i]['fm'] / results[v][i][peer]:.{2 if args.suite == 'prefill' else 3}f}" for v in results]
        cells += [f"{row[o]:.0f}" for o in others]
        cells += [f"{max(results[v][i]['err'] for v in results):.1e}"]
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
