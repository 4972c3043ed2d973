"""Which decode variant reads 16-key pages fastest? Each FLASHMIN_DECODE_EXP variant (read by the
decode plan at each call; the knob exists only with an experiment patch applied) captured in a
CUDA graph and its replay timed, for a paged cache of 16-key pages shuffled over a pool and for the
contiguous cache, beside the contiguous cache under the default plan (scripts/bench_paged.py's
call: flash_attn_with_kvcache, one query, causal, every row full to L keys).

    python scripts/investigations/paged_variants.py [--lens 1024,4096,16384] [--head-dims 64] [variant ...]

Prints, per shape and variant, the graph-replay time of the contiguous and paged calls (us) and
contiguous-default time / paged time (above 1: the paged call is faster), with the max abs
difference of every output to the contiguous default's.
"""
import argparse
import os
import sys

import torch

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_graphs import capture  # noqa: E402
from bench_paged import shuffled_pages  # noqa: E402

SHAPES = ((8, 32, 32, 128), (8, 12, 12, 64), (8, 32, 8, 128))


def page_order(n, kind, page_bytes, g):
    """The pool page of each of n logical pages: a random permutation (shuffled), the identity
    (ordered), or the identity with pages shuffled within each run of 2 MiB of K (local: the same
    scatter inside a run, no new 2 MiB region per page)."""
    if kind == "shuffled":
        return None   # shuffled_pages draws it
    order = torch.arange(n, device="cuda")
    if kind == "local":
        run = max(1, (2 << 20) // page_bytes)
        for s in range(0, n, run):
            e = min(n, s + run)
            order[s:e] = s + torch.randperm(e - s, device="cuda", generator=g)
    elif kind != "ordered":
        raise SystemExit(f"--orders: unknown page order {kind!r} (shuffled, ordered, local)")
    return order


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lens", default="1024,4096,16384")
    ap.add_argument("--page", type=int, default=16)
    ap.add_argument("--head-dims", default="64,128", help="only the shapes of these head dims")
    ap.add_argument("--orders", default="shuffled",
                    help="page orders over the pool, comma-separated: shuffled (a random permutation), ordered "
                         "(logical page i at pool page i), local (shuffled within runs of pages of 2 MiB of K)")
    ap.add_argument("variants", nargs="*", default=["", "cfg=9"])
    args = ap.parse_args()
    timer, method = make_timer(torch.device("cuda"), 10, 50)
    P = args.page
    print(f"# paged variants, {torch.cuda.get_device_name()}, fp16, pages of {P}, graph replay, {method}")
    print("| B, Hq/Hkv, D | L | pages | variant | contiguous us | paged us | contiguous default / paged | max diff |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    g = torch.Generator(device="cuda").manual_seed(0)
    dims = {int(x) for x in args.head_dims.split(",")}
    for B, Hq, Hkv, D in (shape for shape in SHAPES if shape[3] in dims):
        for L in (int(x) for x in args.lens.split(",")):
            k_cache = torch.randn(B, L, Hkv, D, device="cuda", dtype=torch.float16)
            v_cache = torch.randn_like(k_cache)
            q = torch.randn(B, 1, Hq, D, device="cuda", dtype=torch.float16)
            seqlens = torch.full((B,), L, dtype=torch.int32, device="cuda")
            run = lambda kc, vc, bt: fm.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=seqlens, block_table=bt,
                                                                causal=True, check_lengths=False)
            os.environ.pop("FLASHMIN_DECODE_EXP", None)
            ref = run(k_cache, v_cache, None).float()
            graph, _ = capture(lambda: run(k_cache, v_cache, None))
            base = timer(graph.replay)
            del graph
            for kind in args.orders.split(","):
                k_pages, v_pages, table = shuffled_pages(k_cache, v_cache, P, g, page_order(B * L // P, kind, P * Hkv * D * 2, g))
                for var in args.variants:
                    os.environ["FLASHMIN_DECODE_EXP"] = var
                    times, diff = [], 0.0
                    for kc, vc, bt in ((k_cache, v_cache, None), (k_pages, v_pages, table)):
                        graph, out = capture(lambda: run(kc, vc, bt))
                        out.fill_(float("nan"))
                        graph.replay()
                        torch.cuda.synchronize()
                        d = (out.float() - ref).abs().max().item()
                        diff = max(diff, d if d == d else float("inf"))
                        times.append(timer(graph.replay))
                        del graph, out
                    os.environ.pop("FLASHMIN_DECODE_EXP", None)
                    print(f"| {B}, {Hq}/{Hkv}, {D} | {L} | {kind} | {var or 'default'} | {times[0] * 1e3:.1f} | "
                          f"{times[1] * 1e3:.1f} | {base / times[1]:.3f}x | {diff:.1e} |", flush=True)
                k_pages = v_pages = table = None
            k_cache = v_cache = k_pages = v_pages = table = None   # freed before the next shape
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
