"""How evenly a persistent prefill_sm90 grid's work tiles spread over the SMs (a model, no GPU).

    python scripts/investigations/tile_balance.py [--sms 132] [--overhead 0.5]

For the bench's prefill cells (B*N = 16384 tokens, H*D = 2048) each work tile of a query block
costs its key tiles (128 keys) plus a fixed overhead (in key tiles). With the skip of idle
warpgroups (PrefillTraits::kSkipIdle, three math warpgroups of 192-row tiles) a last query block
whose rows fill one / two of the three warpgroups costs 0.4 / 0.75 of its key tiles (guesses: one
warpgroup alone has no partner to overlap its softmax with). Printed per cell: the most loaded
SM against the mean for
- "snake": the kernel's order (a head's query blocks side by side, the heaviest first) handed out
  statically, block c taking the c-th tile of even rounds and the c-th from the end of odd ones;
- "turned": the same, the places turned by one block every pair of rounds (TileWalk, where
  TileDivs::rotate is set);
- "dynamic": the same order, each tile to the SM that frees first (an atomic tile counter);
- "global": every head's heaviest query blocks first, then the next, handed out dynamically;
- "plan": the kernel's walk on main (TileTail, prefill_sm90_plan.cu's make_plan; head dim 64 only in
  the kernel): the snake (turned where the kernel turns it) up to about six rounds before the
  end, then those tiles heaviest first, each to the SM with the least work so far; fewer rounds
  where an SM's list would pass the plan's 1024 entries (seven rows of 132);
- "queue": the tile queue of docs/results/2026-12-03-h200-queue/queue.patch (measured, not on
  main): dynamic, and the last heads (about 6 rounds of tiles, at most 24 MiB of their K and V)
  heaviest first across heads, as that patch's TileDivs::tail_* order them.
1.000 is a perfect spread; the kernel's time follows the most loaded SM. The last column, the
skip's "time": the most loaded SM with the skip and the turning against the snake without either.
"""
import argparse
import heapq


def weights(N, D, rows, causal, overhead, skip, head_major=True):
    B, H = max(1, 16384 // N), 2048 // D
    num_m = (N + rows - 1) // rows
    cons = rows // 64
    w = []
    for _ in range(B * H):
        for mb in reversed(range(num_m)):
            kt = (min(N, (mb + 1) * rows) + 127) // 128 if causal else (N + 127) // 128
            active = min(cons, (N - mb * rows + 63) // 64)
            f = {1: 0.4, 2: 0.75}[active] if skip and cons == 3 and active < cons else 1.0
            w.append(kt * f + overhead)
    return w if head_major else sorted(w, reverse=True)


def snake(w, g, turn=False):
    load = [0.0] * g
    for r in range((len(w) + g - 1) // g):
        for c in range(g):
            cc = (c + (r // 2)) % g if turn else c
            t = r * g + ((g - 1 - cc) if r & 1 else cc)
            if t < len(w):
                load[c] += w[t]
    return max(load)


def queue_order(w, num_m, N, D, g, rounds=6, tail_bytes=24 << 20):
    heads = len(w) // num_m
    tail = min(heads, (rounds * g + num_m - 1) // num_m, tail_bytes // (N * D * 4))
    if tail < 2:
        return w
    t0 = (heads - tail) * num_m
    return w[:t0] + [w[t0 + h * num_m + m] for m in range(num_m) for h in range(tail)]


def plan(w, g, turn, rounds=6, entries=1024):
    """prefill_sm90_plan.cu's plan_tile_tail: the most loaded SM, or None where no plan fits."""
    for r in range(rounds, 0, -1):
        r0 = max(0, len(w) // g - r)
        load = [0.0] * g
        for rr in range(r0):
            for c in range(g):
                cc = (c + rr // 2) % g if turn else c
                load[c] += w[rr * g + ((g - 1 - cc) if rr & 1 else cc)]
        heap = [(load[c], c) for c in range(g)]
        heapq.heapify(heap)
        count = [0] * g
        for t in sorted(range(r0 * g, len(w)), key=lambda t: -w[t]):   # stable: lower index first
            l, c = heapq.heappop(heap)
            count[c] += 1
            heapq.heappush(heap, (l + w[t], c))
        if max(count) * g <= entries:
            return max(l for l, _ in heap)
    return None


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
    for causal in (False, True):
        for N in (512, 1024, 2048, 4096):
            # prefill_sm90_hdim64.cu's rule: 128-row tiles with causality up to 1024 queries
            rows = 192 if D == 64 and not (causal and N <= 1024) else 128
            w = weights(N, D, rows, causal, args.overhead, False)
            ws = weights(N, D, rows, causal, args.overhead, True)
            mean = sum(w) / g
            base = snake(w, g)
            num_m = (N + rows - 1) // rows
            light = rows == 192 and N % rows != 0 and N % rows <= rows - 64   # the kernel's turn
            planned = plan(ws, g, light and g % num_m == 0)
            turned_skip = snake(ws, g, light and g % num_m == 0)
            print(f"hdim {D} causal {int(causal)} N={N} ({rows}-row tiles, {len(w) / g:.1f} tiles per SM): "
                  f"snake {base / mean:.3f}, turned {snake(w, g, True) / mean:.3f}, dynamic {dynamic(w, g) / mean:.3f}, "
                  f"global {dynamic(weights(N, D, rows, causal, args.overhead, False, False), g) / mean:.3f}, "
                  f"queue {dynamic(queue_order(w, (N + rows - 1) // rows, N, D, g), g) / mean:.3f}; "
                  f"with the skip, turned: {snake(ws, g, True) / base:.3f} of the time; "
                  f"with the skip, the kernel's walk: planned "
                  f"{'-' if planned is None else f'{planned / sum(ws) * g:.3f}'} against unplanned {turned_skip / sum(ws) * g:.3f}")
