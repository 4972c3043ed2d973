"""Every CUDA kernel over awkward shapes, small enough to run under compute-sanitizer.

    compute-sanitizer --tool memcheck --error-exitcode 1 python scripts/sanitize.py
    (scripts/device_run.sh, STAGES=sanitize, runs it under memcheck, racecheck and synccheck;
    racecheck, which is slow, with --quick: lengths 1, 17, 97 and the 4099-key caches)

Each kernel of flashmin_nn.backends.CUDA_KERNELS (and "prefill_sm90" where the build has it) is
forced with use_kernel over:
  - prefill: L, S in {1, 17, 97, 1000}, causal or not, head dims 64 and 128, fp16 and bf16
    alternating; plus a bool mask (B, 1, L, S) broadcast over heads, GQA (4 query heads on
    2 kv heads), head dim 256, head dim 64 at 2000 queries, and grids of more work tiles than
    SMs (several per persistent prefill_sm90 block);
  - decode: q_len 1 and 7 against long caches (4099 and 33000 keys, split and unsplit), with and
    without GQA, a full grid over 32k keys (8 splits), and flash_attn_with_kvcache with
    per-batch cache lengths;
  - flash_attn's options (a local window, softcap, ALiBi, attention sinks) in prefill shapes, with
    a bool mask, and over split and unsplit decode caches;
  - packed sequences (flash_attn_varlen_func, read in place by the prefill kernels; --parts varlen)
    and paged caches of 16- and 256-key pages (flash_attn_with_kvcache with block_table, read in
    place by the decode kernel and, for longer queries, the sm80 prefill kernel), and cache rows
    chosen by cache_batch_idx, starting at cache_leftpad (every kernel; --parts paged).
A kernel that refuses a case is skipped for it (counted). Outputs are only checked to be finite:
correctness is tests/ and scripts/smoke.py; this looks for out-of-bounds accesses, shared-memory
races and barrier misuse. Run with PYTORCH_NO_CUDA_MEMORY_CACHING=1 (device_run.sh does), so that
every tensor is its own allocation and memcheck sees its bounds.

Exit status 1 when a kernel raised anything but a refusal or returned a non-finite value.
"""
import argparse
import itertools
import sys
import time

import torch

import flashmin_nn as fm
from flashmin_nn import backends

LENGTHS = (1, 17, 97, 1000)
HEAD_DIMS = (64, 128)
DTYPES = (torch.float16, torch.bfloat16)


def kernel_names():
    names = list(backends.CUDA_KERNELS)
    if "prefill_sm90" not in names and "prefill_sm90" in backends.KERNEL_NAMES:
        names.append("prefill_sm90")
    return names


def prefill_cases(lengths=LENGTHS):
    """(label, q, k, v, mask, causal, gqa) built lazily, one at a time."""
    for i, (L, S, D, causal) in enumerate(itertools.product(lengths, lengths, HEAD_DIMS, (False, True))):
        dt = DTYPES[(i + i // 2 + i // 4) % 2]   # every (D, causal, dtype) over the (L, S) pairs
        yield f"L={L} S={S} D={D} causal={int(causal)} {dt}", dict(shape=(1, 2, 2, L, S, D), dtype=dt, causal=causal)
    for L, S in ((17, 97), (97, 1000), (1000, 17), (1, 1000)):
        yield f"bool mask L={L} S={S} D=64", dict(shape=(2, 2, 2, L, S, 64), dtype=torch.float16, mask=True)
        yield f"gqa 4/2 L={L} S={S} D=128 causal", dict(shape=(1, 4, 2, L, S, 128), dtype=torch.bfloat16, causal=True)
    # rows of 16-byte multiples: the mask-range pass's 16-byte loads (csrc/common/mask_ranges.cu),
    # 150 queries (a partial 64-row group)
    yield "bool mask L=150 S=1024 D=64", dict(shape=(2, 2, 2, 150, 1024, 64), dtype=torch.float16, mask=True)
    # Every configuration of the prefill kernels' launchers that the shapes above miss: head dim 256
    # (64- and 80-key tiles in prefill_sm90), and head dim 64 at 2000 queries (prefill_sm90's
    # 192-row tiles, which --quick's lengths do not reach; the teaching kernel skips it, as slow
    # under racecheck as the 33000-key caches).
    for L, S in ((17, 250), (97, 1000)):
        for causal in (False, True):
            yield f"D=256 L={L} S={S} causal={int(causal)}", dict(shape=(1, 2, 2, L, S, 256), dtype=torch.bfloat16, causal=causal)
    for causal in (False, True):
        yield f"D=64 L=2000 S=2000 causal={int(causal)}", dict(shape=(1, 1, 1, 2000, 2000, 64), dtype=torch.float16,
                                                               causal=causal, skip=("minimal",))
    # More work tiles than SMs (480 and 400 here), so that prefill_sm90's persistent blocks run
    # several and its K/V ring and Q slots run on from one tile into the next; with a window (the general path)
    # and rows that see no key (a bottom-right diagonal above the first 297 rows): empty tiles.
    yield "several tiles per block L=300 S=300 D=64 causal", dict(shape=(2, 80, 80, 300, 300, 64), dtype=torch.float16,
                                                                  causal=True, skip=("minimal",))
    yield "several tiles per block L=300 S=500 D=128", dict(shape=(2, 80, 80, 300, 500, 128), dtype=torch.bfloat16,
                                                            skip=("minimal",))
    yield "several tiles per block window (100, 3) L=600 S=300 D=128", dict(shape=(2, 40, 40, 600, 300, 128),
                                                                            dtype=torch.float16, opts="window",
                                                                            skip=("minimal",))
    # flash_attn's options: a window (tiles before it skipped), softcap, ALiBi and sinks, with a mask.
    for L, S in ((97, 1000), (1000, 1000), (17, 97)) if 1000 in lengths else ((17, 97), (97, 300)):
        yield f"window (100, 3) L={L} S={S} D=128", dict(shape=(1, 4, 2, L, S, 128), dtype=torch.float16, opts="window")
        yield f"all options causal L={L} S={S} D=64", dict(shape=(2, 2, 2, L, S, 64), dtype=torch.bfloat16, causal=True,
                                                             opts="all")
        yield f"all options bool mask L={L} S={S} D=64", dict(shape=(2, 2, 2, L, S, 64), dtype=torch.float16, mask=True,
                                                                opts="all")
        # softcap alone (the other cases carry it only under a window of 100 keys)
        yield f"softcap L={L} S={S} D=128", dict(shape=(2, 4, 2, L, S, 128), dtype=torch.bfloat16, opts="softcap")


def decode_cases(quick=False):
    # The teaching kernel reads long caches slowly under the sanitizer: it keeps the 4099-key cases.
    for q_len, S, D, (hq, hkv) in itertools.product((1, 7), (4099,) if quick else (4099, 33000), HEAD_DIMS, ((4, 4), (8, 2))):
        yield f"decode q_len={q_len} S={S} D={D} H={hq}/{hkv}", dict(shape=(2, hq, hkv, q_len, S, D), dtype=torch.float16,
                                                                    causal=q_len > 1, skip=("minimal",) if S > 5000 else ())
    for S in (4099,) if quick else (4099, 33000):   # options over split and unsplit caches, packed GQA
        yield f"decode all options S={S} D=128 H=8/2", dict(shape=(2, 8, 2, 1, S, 128), dtype=torch.float16, causal=True,
                                                            opts="all", skip=("minimal",) if S > 5000 else ())
        yield f"decode window + sinks S={S} D=64 H=8/2", dict(shape=(2, 8, 2, 1, S, 64), dtype=torch.bfloat16, causal=True,
                                                              opts="window_sinks", skip=("minimal",) if S > 5000 else ())
    # bool masks: one row a block that lets a whole key range through (read once, then the range's
    # ends hidden by index: packed GQA rows, and a key padding row under 7 queries), and
    # random masks with holes (read element by element).
    yield "decode bool mask range S=4099 D=64 H=8/2", dict(shape=(2, 8, 2, 1, 4099, 64), dtype=torch.float16,
                                                           mask="range", skip=("minimal",))
    yield "decode bool mask range q_len=7 S=4099 D=128 H=4/4", dict(shape=(2, 4, 4, 7, 4099, 128), dtype=torch.bfloat16,
                                                                    mask="range", skip=("minimal",))
    yield "decode bool mask q_len=7 S=4099 D=64 H=4/4", dict(shape=(2, 4, 4, 7, 4099, 64), dtype=torch.float16,
                                                             mask=True, skip=("minimal",))
    # a static cache's call (transformers' FilledKeys): seqlens_k and one key padding row a batch
    # row, scanned while the first tiles' copies are in flight (decode_kernel.cuh, scan_late).
    yield "decode filled keys + range row q_len=1 S=4099 D=64 H=8/2", dict(
        shape=(2, 8, 2, 1, 4099, 64), dtype=torch.float16, mask="range", filled=(3000, 4099), skip=("minimal",))
    yield "decode filled keys + random row q_len=7 S=4099 D=128 H=4/4", dict(
        shape=(2, 4, 4, 7, 4099, 128), dtype=torch.bfloat16, mask="row", filled=(1000, 37), skip=("minimal",))
    # 4 x 36 = 144 blocks: on 132 SMs of 228 KB (sm_90) the head dim 128 pair configuration
    # (csrc/decode/decode_plan.cu, rule e), which the small grids above never run.
    yield "decode pair grid S=4099 D=128", dict(shape=(4, 36, 36, 1, 4099, 128), dtype=torch.float16, causal=False,
                                                skip=("minimal",))
    if quick:
        return
    # Grids that fill the GPU over a long cache. 4 x 36 = 144 blocks: on 132 SMs of 228 KB (sm_90)
    # the head dim 128 pair configuration, unsplit (csrc/decode/decode_plan.cu, rule e); elsewhere
    # the 8-split sweep-order plan, which 4 x 72 = 288 blocks run everywhere.
    yield "decode full grid S=32768 D=128", dict(shape=(4, 36, 36, 1, 32768, 128), dtype=torch.bfloat16,
                                                 skip=("minimal",))
    yield "decode full grid, 8 splits S=32768 D=128", dict(shape=(4, 72, 72, 1, 32768, 128), dtype=torch.bfloat16,
                                                           skip=("minimal",))


def varlen_cases(quick=False):
    """Packed sequences with lengths 1, 17, 97 (and 1000), causal or not, GQA, head dims 64 / 128 / 256."""
    lens = (1, 17, 97) if quick else (1, 17, 97, 1000)
    for D, causal in itertools.product((64, 128, 256), (False, True)):
        yield f"varlen lengths {lens} D={D} causal={int(causal)}", dict(varlen=(lens, lens[::-1]), heads=(4, 2), D=D,
                                                                        causal=causal, skip=("minimal", "decode"))


def paged_cases(quick=False):
    """Paged caches (16- and 256-key pages, shuffled), ragged lengths, 1 and 7 queries, GQA packed."""
    for P, q_len, D in itertools.product((16, 256), (1, 7), HEAD_DIMS):
        yield f"paged P={P} q_len={q_len} D={D}", dict(paged=P, q_len=q_len, D=D, lens=(1, 17, 1000) if quick else (1, 1000, 33000),
                                                       skip=("minimal", "prefill", "prefill_sm90"))
    for P, q_len in itertools.product((16, 256), (40, 300)):   # chunked prefill: the sm80 prefill kernel
        yield f"paged P={P} q_len={q_len} D=128", dict(paged=P, q_len=q_len, D=128, lens=(1, 17, 1000),
                                                       skip=("minimal", "decode", "prefill_sm90"))
    for q_len, D in itertools.product((1, 7, 40), HEAD_DIMS):   # cache_batch_idx + cache_leftpad, every kernel
        yield f"cache rows q_len={q_len} D={D}", dict(rows=True, q_len=q_len, D=D, lens=(1, 1000, 4099) if quick else (1, 1000, 33000),
                                                      skip=("minimal",))
        # The teaching kernel, slow under racecheck, on short rows.
        yield f"cache rows q_len={q_len} D={D} short", dict(rows=True, q_len=q_len, D=D, lens=(1, 17, 97),
                                                            skip=("prefill", "prefill_sm90", "decode"))


def run_varlen(spec, dev):
    (lq, lk), (hq, hkv), D = spec["varlen"], spec["heads"], spec["D"]
    cu = lambda ls: torch.tensor([0, *itertools.accumulate(ls)], dtype=torch.int32, device=dev)
    q = torch.randn(sum(lq), hq, D, device=dev, dtype=torch.bfloat16)
    k, v = (torch.randn(sum(lk), hkv, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
    return fm.flash_attn_varlen_func(q, k, v, cu(lq), cu(lk), max(lq), max(lk), causal=spec["causal"])


def run_paged(spec, dev):
    P, q_len, D, lens = spec["paged"], spec["q_len"], spec["D"], spec["lens"]
    B, hq, hkv = len(lens), 8, 2
    per_row = (max(lens) + q_len + P - 1) // P
    k_cache, v_cache = (torch.randn(B * per_row + 3, P, hkv, D, device=dev, dtype=torch.float16) for _ in range(2))
    table = torch.randperm(B * per_row + 3, device=dev)[:B * per_row].to(torch.int32).view(B, per_row)
    q = torch.randn(B, q_len, hq, D, device=dev, dtype=torch.float16)
    k_new, v_new = (torch.randn(B, q_len, hkv, D, device=dev, dtype=torch.float16) for _ in range(2))
    seqlens = torch.tensor(lens, dtype=torch.int32, device=dev)
    return fm.flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, block_table=table, causal=True)


def run_rows(spec, dev):
    q_len, D, lens = spec["q_len"], spec["D"], spec["lens"]
    B, hq, hkv, S = len(lens), 8, 2, max(lens) + q_len
    k_cache, v_cache = (torch.randn(B + 2, S, hkv, D, device=dev, dtype=torch.float16) for _ in range(2))
    idx = torch.randperm(B + 2, device=dev)[:B].to(torch.int32)
    start = torch.tensor([min(3, n) for n in lens], dtype=torch.int32, device=dev)
    q = torch.randn(B, q_len, hq, D, device=dev, dtype=torch.float16)
    k_new, v_new = (torch.randn(B, q_len, hkv, D, device=dev, dtype=torch.float16) for _ in range(2))
    seqlens = torch.tensor(lens, dtype=torch.int32, device=dev)
    return fm.flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, cache_batch_idx=idx,
                                      cache_leftpad=start, causal=True)


def make(spec, dev):
    B, hq, hkv, L, S, D = spec["shape"]
    dt = spec["dtype"]
    q = torch.randn(B, hq, L, D, device=dev, dtype=dt)
    k = torch.randn(B, hkv, S, D, device=dev, dtype=dt)
    v = torch.randn(B, hkv, S, D, device=dev, dtype=dt)
    mask = None
    if spec.get("mask") == "range":   # one row a batch row: keys [5 + 11 b, S - 100 - 7 b), as left padding + empty slots
        j = torch.arange(S, device=dev)
        b = torch.arange(B, device=dev)[:, None]
        mask = ((j >= 5 + 11 * b) & (j < S - 100 - 7 * b))[:, None, None, :]
    elif spec.get("mask") == "row":   # one random row a batch row, holes included
        mask = torch.rand(B, 1, 1, S, device=dev) > 0.3
    elif spec.get("mask"):
        mask = torch.rand(B, 1, L, S, device=dev) > 0.3
    return q, k, v, mask, spec.get("causal", False), hq != hkv


def options(kind, heads, dev):
    """attention()'s keyword options for a case: a window, or a window with sinks, or all four."""
    window = dict(window_size=(100, 3))
    if kind == "window":
        return window
    if kind == "softcap":
        return dict(softcap=20.0)
    sinks = dict(sinks=torch.randn(heads, device=dev))
    if kind == "window_sinks":
        return dict(window, **sinks)
    return dict(window, **sinks, softcap=20.0, alibi_slopes=torch.rand(heads, device=dev) * 0.5)


def refusal(name, q, k, v, mask):
    """Why `name` will not serve the call (None if it will)."""
    try:
        return backends.rejection(name, q, k, v, mask)
    except KeyError:
        return f"no kernel {name!r} in this build"


def run_case(name, label, spec, dev, stats, progress=False):
    if name in spec.get("skip", ()):
        return
    if progress:
        print(f"  {name} {label}", flush=True)
    if "varlen" in spec or "paged" in spec or "rows" in spec:
        q = k = v = mask = None
    else:
        q, k, v, mask, causal, gqa = make(spec, dev)
        if refusal(name, q, k, v, mask) is not None:
            stats["refused"] += 1
            return
    try:
        with fm.use_kernel(name):
            if "varlen" in spec:
                out = run_varlen(spec, dev)
            elif "paged" in spec:
                out = run_paged(spec, dev)
            elif "rows" in spec:
                out = run_rows(spec, dev)
            elif spec.get("filled"):   # keys past filled[b] never read; causal at the filled keys' bottom right
                out = fm.attention(q, k, v, attn_mask=mask, is_causal=True, causal_offset=k.shape[2] - q.shape[2],
                                   seqlens_k=torch.tensor(spec["filled"], dtype=torch.int32, device=dev))
            elif spec.get("opts"):
                out = fm.attention(q, k, v, attn_mask=mask, is_causal=causal, causal_offset=k.shape[2] - q.shape[2],
                                   **options(spec["opts"], q.shape[1], dev))
            else:
                out = fm.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa)
        torch.cuda.synchronize()
    except RuntimeError as e:
        if "cannot run this call" in str(e):
            stats["refused"] += 1
            return
        stats["failed"] += 1
        print(f"FAIL {name} {label}: {' '.join(str(e).split())[:300]}", flush=True)
        return
    if not torch.isfinite(out).all():
        stats["failed"] += 1
        print(f"FAIL {name} {label}: non-finite output", flush=True)
        return
    stats["ran"] += 1


def kvcache_case(dev, stats):
    """flash_attn_with_kvcache with per-batch lengths and new keys appended (the decode kernel via auto)."""
    B, Smax, hq, hkv, D = 3, 5000, 8, 2, 128
    k_cache = torch.randn(B, Smax, hkv, D, device=dev, dtype=torch.float16)
    v_cache = torch.randn_like(k_cache)
    lens = torch.tensor([1, 777, 4990], device=dev, dtype=torch.int32)
    q = torch.randn(B, 1, hq, D, device=dev, dtype=torch.float16)
    k_new = torch.randn(B, 1, hkv, D, device=dev, dtype=torch.float16)
    try:
        out = fm.flash_attn_with_kvcache(q=q, k_cache=k_cache, v_cache=v_cache, k=k_new, v=k_new.clone(),
                                         cache_seqlens=lens, causal=True)
        out = out[0] if isinstance(out, tuple) else out
        torch.cuda.synchronize()
        ok = bool(torch.isfinite(out).all())
    except Exception as e:
        print(f"FAIL flash_attn_with_kvcache: {' '.join(str(e).split())[:300]}", flush=True)
        ok = False
    stats["ran" if ok else "failed"] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=None, help="comma list (default: every CUDA kernel of the build)")
    ap.add_argument("--parts", default="prefill,decode,varlen,paged,kvcache")
    ap.add_argument("--quick", action="store_true",
                    help="for racecheck, which is slow: lengths 1, 17, 97 (no 1000) and 4099-key caches only "
                         "(split and unsplit, no 33000-key or full-grid cases)")
    ap.add_argument("--progress", action="store_true", help="print each case before it runs (to see where a slow tool is)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("sanitize.py needs a CUDA device")
        return 1
    dev = "cuda"
    torch.manual_seed(0)
    names = args.kernels.split(",") if args.kernels else kernel_names()
    parts = args.parts.split(",")
    lengths = tuple(n for n in LENGTHS if n < 1000) if args.quick else LENGTHS
    cases = [*(prefill_cases(lengths) if "prefill" in parts else ()), *(decode_cases(args.quick) if "decode" in parts else ()),
             *(varlen_cases(args.quick) if "varlen" in parts else ()), *(paged_cases(args.quick) if "paged" in parts else ())]
    total = {"ran": 0, "refused": 0, "failed": 0}
    t0 = time.perf_counter()
    for name in names:
        stats = {"ran": 0, "refused": 0, "failed": 0}
        for label, spec in cases:
            run_case(name, label, spec, dev, stats, args.progress)
        print(f"{name:14s} ran {stats['ran']:3d}, refused {stats['refused']:3d}, failed {stats['failed']:3d}"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        for key in total:
            total[key] += stats[key]
    if "kvcache" in parts:
        kvcache_case(dev, total)
    print(f"sanitize.py: {total['ran']} calls ran, {total['refused']} refused, {total['failed']} failed "
          f"({time.perf_counter() - t0:.0f} s)")
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
