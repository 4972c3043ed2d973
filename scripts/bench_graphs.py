"""A decode step replayed from a CUDA graph against the same step run eagerly, same run.

    python scripts/bench_graphs.py [--dtype fp16|bf16] [--quick]

One query token per row appended to the cache and attended to (flash_attn_with_kvcache with k/v
and device-side cache_seqlens, causal, check_lengths=False), B=8, over a cache of capacity S_max
filled to S_max - 1 keys; contiguous and paged (256-key pages) caches. The decode plan depends on
shapes only (the capacity), so the captured grid is the eager one; a graph that planned for the
wrong length would show here as a slower replay. Columns: median ms of the eager call and of
graph.replay() (flashmin_nn.bench.timing: the L2 flushed before each call; the eager time includes
whatever host time the GPU waits for), and eager / graph (above 1: the replay is faster). Every
replay is checked against the eager output of the same inputs (max abs difference).
"""
import argparse
import sys

import torch

import flashmin_nn as fm
from flashmin_nn.bench.timing import log, make_timer

K = 1024
SHAPES = ((8, 32, 32, 128), (8, 12, 12, 64), (8, 32, 8, 128))   # B, Hq, Hkv, D


def capture(fn):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):      # warm-up off the capture (loads the extension, plans, allocates)
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    ap.add_argument("--quick", action="store_true", help="shorter timing, capacity 4k and 16k only")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_graphs.py needs a CUDA device")
        return 1
    dt = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    caps = (4 * K, 16 * K) if args.quick else (1 * K, 4 * K, 16 * K, 64 * K)
    timer, method = make_timer(torch.device("cuda"), 5 if args.quick else 25, 20 if args.quick else 100)
    print(f"# flashmin decode step, CUDA graph replay against eager, {torch.cuda.get_device_name()}, {args.dtype}; "
          f"median ms ({method})")
    print("| B, Hq/Hkv, D | S_max | cache | eager ms | graph ms | eager / graph | max diff |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for B, Hq, Hkv, D in SHAPES:
        for S in caps:
            for layout in ("contiguous", "paged 256"):
                kc = torch.randn(B, S, Hkv, D, device="cuda", dtype=dt)
                vc = torch.randn_like(kc)
                table = None
                if layout != "contiguous":
                    P = 256
                    table = torch.randperm(B * S // P, device="cuda").to(torch.int32).view(B, S // P)
                    pool_k = torch.empty(B * S // P, P, Hkv, D, device="cuda", dtype=dt)
                    pool_v = torch.empty_like(pool_k)
                    pool_k[table.long()] = kc.view(B, S // P, P, Hkv, D)
                    pool_v[table.long()] = vc.view(B, S // P, P, Hkv, D)
                    kc, vc = pool_k, pool_v
                q = torch.randn(B, 1, Hq, D, device="cuda", dtype=dt)
                kn, vn = torch.randn(B, 1, Hkv, D, device="cuda", dtype=dt), torch.randn(B, 1, Hkv, D, device="cuda", dtype=dt)
                lens = torch.full((B,), S - 1, dtype=torch.int32, device="cuda")
                step = lambda: fm.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=lens, block_table=table,
                                                          causal=True, check_lengths=False)
                graph, out = capture(step)
                graph.replay()
                diff = (out.float() - step().float()).abs().max().item()
                t_eager, t_graph = timer(step), timer(graph.replay)
                print(f"| {B}, {Hq}/{Hkv}, {D} | {S} | {layout} | {t_eager:.4f} | {t_graph:.4f} | "
                      f"{t_eager / t_graph:.3f}x | {diff:.1e} |", flush=True)
                log(f"B={B} Hq={Hq} Hkv={Hkv} D={D} S={S} {layout} done")
                del graph, out, kc, vc
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
