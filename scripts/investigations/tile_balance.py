"""How evenly a persistent prefill_sm90 grid's work tiles spread over the SMs (a model, no GPU).

    python scripts/investigations/tile_balance.py [--sms 132] [--overhead 0.5]

For the bench's causal prefill cells (B*N = 16384 tokens, H*D = 2048) each work tile of a query
block costs its key tiles (128 keys) plus a fixed overhead (in key tiles). Printed per cell: the
most loaded SM against the mean for
- "snake": the kernel's order (a head's query blocks side by side, the heaviest first) handed out
  statically, block c taking the c-th tile of even rounds and the c-th from the end of odd ones
  (round_tile in prefill_sm90_kernel.cuh);
- "dynamic": the same order, each tile to the SM that frees first (an atomic tile counter);
- "global": every head's heaviest query blocks first, then the next, handed out dynamically.
1.000 is a perfect spread; the kernel's time follows the most loaded SM.
"""
import argparse
import heapq


def weights(N, D, rows, kbn, overhead, head_major):
    B, H = 16384 // N, 2048 // D
    num_m = (N + rows - 1) // rows
    w = [(min(N, (mb + 1) * rows) + kbn - 1) // kbn + overhead for _ in range(B * H) for mb in reversed(range(num_m))]
    return w if head_major else sorted(w, reverse=True)


def snake(w, g):
    load = [0.0] * g
    for r in range((len(w) + g - 1) // g):
        for c in range(g):
            t = r * g + ((g - 1 - c) if r & 1 else c)
            if t < len(w):
                load[c] += w[t]
    return max(load)


def dynamic(w, g):
    heap = [(0.0, c) for c in range(g)]
    for x in w:
        load, c = heapq.heappop(heap)
        heapq.heappush(heap, (load + x, c))
    return max(load for load, _ in heap)


ap = argparse.ArgumentParser()
ap.add_argument("--sms", type=int, default=132)
ap.add_argument("--overhead", type=float, default=0.5, help="fixed cost of a work tile, in key tiles")
args = ap.parse_args()
g = args.sms
for D in (64, 128):
    for N in (512, 1024, 2048, 4096):
        rows = 192 if D == 64 and N > 1024 else 128   # prefill_sm90_hdim64.cu's rule for causal calls
        w = weights(N, D, rows, 128, args.overhead, True)
        mean = sum(w) / g
        wg = weights(N, D, rows, 128, args.overhead, False)
        print(f"hdim {D} causal N={N} ({rows}-row tiles, {len(w) / g:.1f} tiles per SM): snake {snake(w, g) / mean:.3f}, "
              f"dynamic {dynamic(w, g) / mean:.3f}, global {dynamic(wg, g) / mean:.3f}")
