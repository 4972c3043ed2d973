"""What a decode step over a static cache costs, and what its mask costs: the attention call of a
compiled static-cache generation (examples/gpt2_infer.py --cache static) timed alone, at GPT-2's
shape (B=8, 12 heads, head dim 64, 2048 slots) and the Llama shape's (32 query heads on 4).

    python scripts/investigations/static_decode.py            [--filled 129,256,384] [--interleave] [--pdl]
    python scripts/investigations/static_decode.py --ncu      (one call of each flashmin variant, for ncu)
    python scripts/investigations/static_decode.py --prefill  (the mask-range pass before a masked prefill)

Variants, each over 12 caches (one a layer, as in the model), captured 12 calls to a CUDA graph
and replayed: per call the replay's time / 12 (launch gaps included) and the profiler's mean
kernel time:
  mask      flashmin.attention with the (B, 1, 1, S) bool mask a static cache's step gets
  mask_pad  the same with left padding (0-70 keys a row)
  seqlens   flash_attn_with_kvcache over the same cache with cache_seqlens (no mask)
  filled    flashmin.attention with seqlens_k and a (B, 1, 1, S) key padding row of ones (what
            transformers' integration sends a static cache's step: FilledKeys)
  filled_pad  the same with left padding
  sliced    flashmin.attention on the filled keys only (a (B, H, f, D) view, no mask)
  sdpa      F.scaled_dot_product_attention with the mask (what sdpa's step runs)
  empty     a one-element add (a graph node's cost)
--interleave puts that add before every call (in the model the cache's index_copy runs right
before each attention call). --pdl adds each flashmin variant launched as a programmatic dependent
of the kernel before it (FLASHMIN_DECODE_PDL=1, read at each launch only with
docs/results/2026-12-03-h200-staticmask/pdl-knob.patch applied onto the commit that added
this script, and the extension rebuilt).
"""
import argparse
import os
import statistics

import torch
import torch.nn.functional as F

import flashmin_nn as fm

LAYERS = 12


def step_mask(B, S, f, pad):
    """The (B, 1, 1, S) bool mask of a step with f slots filled; with pad, row b's first 10 b keys
    are left padding."""
    j = torch.arange(S, device="cuda")
    pads = torch.arange(B, device="cuda") * (10 if pad else 0)
    return ((j[None] < f) & (j[None] >= pads[:, None]))[:, None, None, :]


def variants(B, Hq, Hkv, D, S, f):
    g = torch.Generator(device="cuda").manual_seed(0)
    caches = [(torch.randn(B, Hkv, S, D, device="cuda", dtype=torch.float16, generator=g),
               torch.randn(B, Hkv, S, D, device="cuda", dtype=torch.float16, generator=g)) for _ in range(LAYERS)]
    q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.float16, generator=g)
    mask, mask_pad = step_mask(B, S, f, False), step_mask(B, S, f, True)
    lens = torch.full((B,), f, dtype=torch.int32, device="cuda")
    ones = torch.ones(B, 1, 1, S, dtype=torch.bool, device="cuda")
    scale = D ** -0.5
    gqa = Hq != Hkv
    small = torch.zeros(1, device="cuda")
    return {
        "mask": lambda k, v: fm.attention(q, k, v, mask, scale, False, S - 1),
        "mask_pad": lambda k, v: fm.attention(q, k, v, mask_pad, scale, False, S - 1),
        "seqlens": lambda k, v: fm.flash_attn_with_kvcache(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                           cache_seqlens=lens, softmax_scale=scale),
        "filled": lambda k, v: fm.attention(q, k, v, ones, scale, True, S - 1, seqlens_k=lens),
        "filled_pad": lambda k, v: fm.attention(q, k, v, mask_pad, scale, True, S - 1, seqlens_k=lens),
        "sliced": lambda k, v: fm.attention(q, k[:, :, :f], v[:, :, :f], None, scale, False, 0),
        "sdpa": lambda k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa),
        "empty": lambda k, v: small.add_(1.0),
    }, caches, q


def graph_time(fn, caches, reps=30, rounds=5, before=None):
    """Per call: the replay time of a graph of len(caches) calls (each after `before`, when given) /
    len(caches), median of `rounds`."""
    def calls():
        for k, v in caches:
            if before is not None:
                before()
            fn(k, v)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        calls()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        calls()
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(rounds):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            graph.replay()
        b.record()
        b.synchronize()
        per_call.append(a.elapsed_time(b) * 1e3 / (reps * len(caches)))
    return statistics.median(per_call), graph


def kernel_means(graph, reps=20):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            graph.replay()
        torch.cuda.synchronize()
    out = []
    for e in prof.key_averages():
        if e.self_device_time_total > 0 and e.count >= reps:
            out.append(f"{e.key[:48]} {e.self_device_time_total / e.count:.2f}")
    return "; ".join(out)


COLUMNS = ["mask", "mask_pad", "filled", "filled_pad", "seqlens", "sliced", "sdpa", "empty"]
PDL_COLUMNS = ["mask", "mask+pdl", "mask_pad", "seqlens", "seqlens+pdl", "sliced", "sliced+pdl", "sdpa", "empty"]


def decode_table(shapes, filled, interleave, columns):
    """interleave: a one-element add before every call (in the model a small kernel, the cache's
    index_copy, runs right before each attention call); "empty" is then the add alone."""
    small = torch.zeros(1, device="cuda")
    before = (lambda: small.add_(1.0)) if interleave else None
    print("| shape | filled | " + " | ".join(columns) + " | kernel means (us) of mask / filled / seqlens |")
    print("|---|---:|" + "---:|" * len(columns) + "---|")
    for name, (B, Hq, Hkv, D, S) in shapes.items():
        for f in filled:
            fns, caches, q = variants(B, Hq, Hkv, D, S, f)
            k0, v0 = caches[0]
            ref = fm.attention(q, k0[:, :, :f], v0[:, :, :f], None, D ** -0.5, False, 0).float()
            diffs = {}
            for n in ("mask", "mask_pad", "filled", "filled_pad", "seqlens"):
                try:
                    out = fns[n](k0, v0).float()
                    diffs[n] = round((out.reshape(ref.shape) - ref).abs().max().item(), 5) if "pad" not in n else \
                        bool(torch.isfinite(out).all())
                except Exception as e:
                    diffs[n] = f"error: {str(e)[:60]}"

            cells, means = [], []
            for n in columns:
                base, pdl = n.removesuffix("+pdl"), n.endswith("+pdl")
                os.environ["FLASHMIN_DECODE_PDL"] = "1" if pdl else "0"   # read at each launch (--pdl's patch)
                try:
                    t, graph = graph_time(fns[base], caches, before=None if n == "empty" else before)
                except Exception as e:   # a variant the library refuses: say why, go on
                    cells.append(f"error: {str(e)[:60]}")
                    continue
                finally:
                    os.environ.pop("FLASHMIN_DECODE_PDL", None)
                cells.append(f"{t:.2f}")
                if n in ("mask", "filled", "seqlens"):
                    means.append(kernel_means(graph))
            print(f"| {name} | {f} | " + " | ".join(cells) + f" | {' / '.join(means)} (max diff {diffs}) |", flush=True)


def ncu_calls(B, Hq, Hkv, D, S, f):
    fns, caches, _ = variants(B, Hq, Hkv, D, S, f)
    k, v = caches[0]
    order = ("mask", "mask_pad", "seqlens", "sliced")
    for _ in range(2):
        for n in order:
            fns[n](k, v)
    torch.cuda.synchronize()
    for n in order:   # the profiled launches, in this order
        fns[n](k, v)
    torch.cuda.synchronize()
    print("ncu order:", order)


def prefill_ranges():
    from torch.profiler import ProfilerActivity, profile
    H, D = 12, 64
    for B, L, S, kind in ((8, 128, 2048, "static prompt"), (8, 1024, 1024, "left padded")):
        q = torch.randn(B, H, L, D, device="cuda", dtype=torch.float16)
        k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.float16) for _ in range(2))
        i = torch.arange(L, device="cuda")[:, None]
        j = torch.arange(S, device="cuda")[None, :]
        if kind == "static prompt":
            mask = (j <= i).expand(B, 1, L, S)
        else:
            pads = torch.arange(B, device="cuda")[:, None, None] * 37
            mask = ((j <= i)[None] & (j[None] >= pads)).unsqueeze(1)
        fn = lambda: fm.attention(q, k, v, mask, None, False, 0)
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
        out = fn()
        dead = ~mask.any(-1, keepdim=True)
        err = (out.float() - ref).masked_fill(dead, 0).abs().max().item()
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fn()
            torch.cuda.synchronize()
        ks = [f"{e.key[:60]}: {e.self_device_time_total / e.count:.2f} us" for e in prof.key_averages()
              if e.self_device_time_total > 0]
        print(f"{kind} B={B} H={H} L={L} S={S} D={D} (max err vs fp32 {err:.2e}): " + "; ".join(ks), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--filled", default="129,256,384")
    ap.add_argument("--ncu", action="store_true")
    ap.add_argument("--prefill", action="store_true")
    ap.add_argument("--interleave", action="store_true", help="a one-element add before every call")
    ap.add_argument("--pdl", action="store_true", help="also each flashmin variant launched as a programmatic "
                    "dependent (needs docs/results/2026-12-03-h200-staticmask/pdl-knob.patch applied and built)")
    a = ap.parse_args()
    shapes = {"gpt2 8x12x64": (8, 12, 12, 64, 2048), "llama 8x32/4x64": (8, 32, 4, 64, 2048)}
    if a.ncu:
        ncu_calls(*shapes["gpt2 8x12x64"], 256)
    elif a.prefill:
        prefill_ranges()
    else:
        print(f"# static-cache decode step, {torch.cuda.get_device_name()}, fp16; us per call (CUDA graph of "
              f"{LAYERS} calls over {LAYERS} caches{', each after a one-element add' if a.interleave else ''}, "
              "median of 5 rounds of 30 replays); +pdl: launched as a programmatic dependent")
        decode_table(shapes, [int(x) for x in a.filled.split(",")], a.interleave, PDL_COLUMNS if a.pdl else COLUMNS)


if __name__ == "__main__":
    main()
