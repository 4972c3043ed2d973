"""Paged KV caches: flash_attn_with_kvcache with block_table, read in place by the decode kernel,
against the same call on a contiguous cache, same run.

    python scripts/bench_paged.py [--dtype fp16|bf16] [--quick]

One query token per batch row (decode), causal, every cache full to L keys (cache_seqlens = L, no
new keys appended, so only the attention is timed). The paged cache holds the same keys in pages
of P keys, shuffled over a pool (the page order of a server's allocator after some traffic).
Columns: the median time of each (flashmin_nn.bench.timing, the L2 flushed before every call),
the bytes of K and V read per second, and contiguous / paged (above 1: the paged call is faster).
Every paged result is checked against the contiguous one (max abs difference).
The eager call's time includes whatever host time the GPU waits for (at 1k-4k keys the host work of
a call, more for a paged one, is longer than the L2 flush before it). So each call is also
captured in a CUDA graph and its replay timed the same way ("graph" columns): the GPU's own time,
where contiguous / paged compares what the kernels read (scripts/bench_graphs.py: the plan depends
on shapes only, so the replayed kernels are the eager ones).
"""
import argparse
import os
import sys

import torch

import flashmin_nn as fm
from flashmin_nn.bench.timing import log, make_timer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_graphs import capture  # noqa: E402  (scripts/ is not a package)

K = 1024


def shuffled_pages(k_cache, v_cache, P, generator=None, order=None):
    """The keys of a (B, L, Hkv, D) cache in pages of P keys shuffled over a pool, as a server's
    allocator leaves them: (k_pages, v_pages, block_table), logical page j of row b at pool page
    block_table[b, j]. order: the pool page of each logical page (B * L / P,), instead of a
    random permutation."""
    B, L, Hkv, D = k_cache.shape
    n = B * L // P
    if order is None:   # logical page i -> pool page order[i]
        order = torch.randperm(n, device=k_cache.device, generator=generator)
    k_pages = torch.empty(n, P, Hkv, D, device=k_cache.device, dtype=k_cache.dtype)
    v_pages = torch.empty_like(k_pages)
    k_pages[order] = k_cache.reshape(n, P, Hkv, D)
    v_pages[order] = v_cache.reshape(n, P, Hkv, D)
    return k_pages, v_pages, order.to(torch.int32).view(B, L // P).contiguous()


SHAPES = ((8, 32, 32, 128), (8, 12, 12, 64), (8, 32, 8, 128))   # B, Hq, Hkv, D: the bench's decode shapes
PAGES = (16, 256)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    ap.add_argument("--lens", default="1024,4096,16384,65536")
    ap.add_argument("--quick", action="store_true", help="shorter timing, lengths 4k and 16k")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_paged.py needs a CUDA device")
        return 1
    dt = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    lens = (4 * K, 16 * K) if args.quick else tuple(int(x) for x in args.lens.split(","))
    timer, method = make_timer(torch.device("cuda"), 5 if args.quick else 25, 20 if args.quick else 100)
    print(f"# flashmin paged KV cache, {torch.cuda.get_device_name()}, {args.dtype}, one query, causal; "
          f"median ms ({method}), GB/s of K and V")
    head = " | ".join(f"P={P} ms | P={P} GB/s | contiguous / P={P} | graph: P={P} ms | graph: contiguous / P={P}"
                      for P in PAGES)
    print(f"| B, Hq/Hkv, D | L | contiguous ms | contiguous GB/s | graph: contiguous ms | {head} | max diff |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (5 * len(PAGES)) + "---:|")
    g = torch.Generator(device="cuda").manual_seed(0)
    for B, Hq, Hkv, D in SHAPES:
        for L in lens:
            k_cache = torch.randn(B, L, Hkv, D, device="cuda", dtype=dt)
            v_cache = torch.randn_like(k_cache)
            q = torch.randn(B, 1, Hq, D, device="cuda", dtype=dt)
            seqlens = torch.full((B,), L, dtype=torch.int32, device="cuda")
            nbytes = 2 * k_cache.numel() * k_cache.element_size()
            run = lambda kc, vc, bt: fm.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=seqlens, block_table=bt,
                                                                causal=True, check_lengths=False)
            ref = run(k_cache, v_cache, None)
            t_contig = timer(lambda: run(k_cache, v_cache, None))
            graph, _ = capture(lambda: run(k_cache, v_cache, None))
            g_contig = timer(graph.replay)
            del graph
            cells, diff = [], 0.0
            for P in PAGES:
                k_pages, v_pages, table = shuffled_pages(k_cache, v_cache, P, g)
                out = run(k_pages, v_pages, table)
                diff = max(diff, (out.float() - ref.float()).abs().max().item())
                t = timer(lambda: run(k_pages, v_pages, table))
                graph, g_out = capture(lambda: run(k_pages, v_pages, table))
                graph.replay()
                diff = max(diff, (g_out.float() - ref.float()).abs().max().item())
                t_graph = timer(graph.replay)
                cells.append(f"{t:.4f} | {nbytes / t / 1e6:.0f} | {t_contig / t:.3f}x | {t_graph:.4f} | "
                             f"{g_contig / t_graph:.3f}x")
                del k_pages, v_pages, table, graph, g_out
            print(f"| {B}, {Hq}/{Hkv}, {D} | {L} | {t_contig:.4f} | {nbytes / t_contig / 1e6:.0f} | {g_contig:.4f} | "
                  f"{' | '.join(cells)} | "
                  f"{diff:.1e} |", flush=True)
            log(f"B={B} Hq={Hq} Hkv={Hkv} D={D} L={L} done")
            del k_cache, v_cache
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
