"""The suites, declared as data, and the loop that runs each one's cells.

  minimal  the teaching kernel: B=16 (B=8 at N=1), H=12, D=64, fp32, N in {64, 100, 256, 1024, 1}.
           flashmin's minimal kernel (forced) against manual matmul-softmax-matmul in fp32 and
           SDPA in fp16 (flashmin auto in fp16 beside it), and the PUBLISHED times of the original
           flash-attention-minimal kernel (ORIGINAL_MINIMAL_PUBLISHED_MS, not measured here).
  prefill  FlashAttention's convention: B * N = 16384 tokens, H * D = 2048, (B, H, N, D), fp16
           (or --dtype bf16), hdim {64, 128, 256} x causal {no, yes} x N {128 .. 16k}. flashmin
           auto beside SDPA forced to FlashAttention-2 and to cuDNN, one column per
           --fm-kernels kernel, and the floor (FLOPs / the run's dense-matmul rate).
  decode   one query token against a (B, Hkv, L, D) cache, fp16 (or --dtype bf16): DECODE_SHAPES.
           flashmin auto beside SDPA's own choice and SDPA forced to FlashAttention-2, one column
           per --fm-kernels kernel, and the read ceiling (pure readers of the same K and V).
  cpu      a small sanity run on the CPU (flashmin's reference path against manual attention
           and torch SDPA); what runs when no GPU is present. Its numbers are CPU timings.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .impls import Impl, flashmin_impl, forced_impls, kvcache_impl, manual_impl, reader_impls, sdpa_impl
from .measures import DTYPES, Reference, attention_flops, decode_bytes
from .runner import Bench, progress
from .timing import log

K = 1024


@dataclass(frozen=True)
class PrefillGrid:
    hdims: tuple = (64, 128, 256)
    causal: tuple = (False, True)
    seqlens: tuple = (128, 256, 512, 1 * K, 2 * K, 4 * K, 8 * K, 16 * K)
    quick_seqlens: tuple = (512, 2 * K, 8 * K)
    tokens: int = 16384           # B * N
    hidden: int = 2048            # H * D


@dataclass(frozen=True)
class DecodeShape:
    B: int
    Hq: int
    Hkv: int
    D: int
    lens: tuple                   # KV cache lengths L
    quick_lens: tuple


PREFILL = PrefillGrid()
_LENS, _QUICK = (1 * K, 4 * K, 16 * K, 64 * K), (1 * K, 16 * K)
DECODE_SHAPES = (
    DecodeShape(8, 32, 32, 128, _LENS, _QUICK),
    DecodeShape(8, 12, 12, 64, _LENS, _QUICK),          # GPT-2 small's heads
    DecodeShape(8, 32, 8, 128, _LENS, _QUICK),          # grouped queries: 4 query heads per kv head
    DecodeShape(1, 32, 32, 128, (4 * K, 32 * K), (4 * K,)),
    DecodeShape(64, 32, 32, 128, (4 * K, 32 * K), (4 * K,)),
)
MINIMAL_SEQLENS = (64, 100, 256, 1024, 1)
CPU_SEQLENS = (1, 17, 64, 100, 256)
SLOW_MAX_N = {"fm-minimal": 1024, "sdpa-math": 1024, "manual": 4096}   # --all-kernels columns, by N

# Published figures, NOT measured here: the original flash-attention-minimal kernel (fp32, one
# thread per query row, 32x32 tiles) on an H100 80GB, B=16 (B=8 at N=1), H=12, D=64, in ms.
# They only anchor the "x faster than original" column.
ORIGINAL_MINIMAL_PUBLISHED_MS = {64: 0.805, 100: 2.99, 256: 11.6, 1024: 185.6, 1: 0.203}


def _randn(shape, dtype, device):
    return torch.randn(shape, dtype=dtype, device=device)


def _auto(bench, x):
    return bench.auto_kernel(x["q"], x["k"], x["v"], x["causal"])


def suite_minimal(bench: Bench, args):
    """The teaching-kernel table: fp32, B=16, H=12, D=64 (B=8 at N=1), non-causal."""
    dev, rows = bench.device, []
    for N in MINIMAL_SEQLENS:
        B, H, D = (8 if N == 1 else 16), 12, 64
        log(f"[minimal] N={N} B={B} H={H} D={D} fp32 ...")

        def make():
            x = {k: _randn((B, H, N, D), torch.float32, dev) for k in "qkv"}
            x.update({k + "16": x[k].half() for k in "qkv"}, causal=False)
            return x
        sets = bench.sets(make, 3 * B * H * N * D * 4)
        ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"], full=True)
        impls = [flashmin_impl("minimal", "minimal"),
                 manual_impl("manual fp32"),
                 sdpa_impl("sdpa fp16", suffix="16", dtype=torch.float16),
                 flashmin_impl("fm fp16", suffix="16", dtype=torch.float16)]
        res = bench.run(impls, sets, ref, torch.float32)
        progress(f"[minimal] N={N}", res, "ms", "ms")
        rows.append({"config": {"N": N, "B": B, "H": H, "D": D, "dtype": "fp32",
                                "original_published_ms": ORIGINAL_MINIMAL_PUBLISHED_MS.get(N)},
                     "results": res})
        del sets, ref
        bench.free()
    return rows


def prefill_impls(N, bench, fm_kernels):
    """The columns of one prefill cell: the peers, then forced flashmin kernels, then extras."""
    impls = [flashmin_impl("fm"), sdpa_impl("sdpa-flash"), sdpa_impl("sdpa-cudnn"), *forced_impls(fm_kernels)]
    if bench.all_kernels:
        extra = [sdpa_impl("sdpa-mem-eff"), sdpa_impl("sdpa-math"), sdpa_impl("sdpa"), manual_impl(),
                 *([] if "minimal" in fm_kernels else [flashmin_impl("fm-minimal", "minimal")])]
        impls += [i if N <= SLOW_MAX_N.get(i.name, N) else Impl(i.name, None) for i in extra]
    return impls


def suite_prefill(bench: Bench, args):
    dtype, dev, rows = DTYPES[args.dtype], bench.device, []
    rate = (bench.matmul or {}).get("tflops")
    for D in args.hdims:
        for causal in PREFILL.causal:
            for N in args.seqlens:
                B, H = max(1, args.tokens // N), max(1, PREFILL.hidden // D)
                text = f"[prefill] hdim={D} causal={int(causal)} N={N} B={B} H={H} {args.dtype}"
                log(text + " ...")
                shape = (B, H, N, D)

                def make():
                    return {"q": _randn(shape, dtype, dev), "k": _randn(shape, dtype, dev),
                            "v": _randn(shape, dtype, dev), "causal": causal}
                try:
                    sets = bench.sets(make, 3 * B * H * N * D * dtype.itemsize)
                except torch.cuda.OutOfMemoryError:
                    log(f"{text}: inputs do not fit, skipped")
                    bench.free()
                    continue
                tril = torch.ones(N, N, dtype=torch.bool, device=dev).tril() if causal and bench.all_kernels else None
                for x in sets:
                    x["tril"] = tril
                ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal=causal)
                impls = prefill_impls(N, bench, args.fm_kernels)
                flops = attention_flops(B, H, N, D, causal)
                res = bench.run(impls, sets, ref, dtype, ("tflops", lambda ms: flops / ms / 1e9))
                cfg = {"hdim": D, "causal": causal, "N": N, "B": B, "H": H, "dtype": args.dtype, "flops": flops,
                       "floor_ms": flops / rate / 1e9 if rate else None, "auto_kernel": _auto(bench, sets[0])}
                progress(text, res, "tflops", "TFLOP/s")
                rows.append({"config": cfg, "results": res})
                del sets, ref, tril
                bench.free()
    return rows


def decode_impls(bench, fm_kernels):
    """The columns of one decode cell: the peers, forced flashmin kernels, the readers, extras."""
    impls = [flashmin_impl("fm"), sdpa_impl("sdpa"), sdpa_impl("sdpa-flash"), *forced_impls(fm_kernels),
             *reader_impls(bench.device)]
    if bench.all_kernels:
        impls += [sdpa_impl("sdpa-cudnn"), sdpa_impl("sdpa-mem-eff"), kvcache_impl(), manual_impl()]
    return impls


def decode_cells(args):
    """(shape, L) pairs of the decode suite: --kvlens replaces every shape's lengths."""
    for s in DECODE_SHAPES:
        for L in args.kvlens or (s.quick_lens if args.quick else s.lens):
            yield s, L


def suite_decode(bench: Bench, args):
    dtype, dev, rows = DTYPES[args.dtype], bench.device, []
    for s, L in decode_cells(args):
        B, Hq, Hkv, D = s.B, s.Hq, s.Hkv, s.D
        text = f"[decode] B={B} Hq={Hq} Hkv={Hkv} D={D} L={L} {args.dtype}"
        log(text + " ...")

        def make():
            x = {"q": _randn((B, Hq, 1, D), dtype, dev), "k": _randn((B, Hkv, L, D), dtype, dev),
                 "v": _randn((B, Hkv, L, D), dtype, dev), "causal": False, "tril": None, "gqa": Hq != Hkv}
            if bench.all_kernels:  # FlashAttention's cache layout, (B, L, Hkv, D), for fm-kvcache
                x["k_cache"] = x["k"].transpose(1, 2).contiguous()
                x["v_cache"] = x["v"].transpose(1, 2).contiguous()
            return x
        nbytes = decode_bytes(B, Hkv, L, D, dtype.itemsize)
        try:
            sets = bench.sets(make, nbytes)
        except torch.cuda.OutOfMemoryError:
            log(f"{text}: inputs do not fit, skipped")
            bench.free()
            continue
        ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"])
        res = bench.run(decode_impls(bench, args.fm_kernels), sets, ref, dtype, ("gbps", lambda ms: nbytes / ms / 1e6))
        cfg = {"B": B, "H": Hq, "Hkv": Hkv, "D": D, "L": L, "dtype": args.dtype, "bytes": nbytes,
               "auto_kernel": _auto(bench, sets[0])}
        progress(text, res, "gbps", "GB/s")
        rows.append({"config": cfg, "results": res})
        del sets, ref
        bench.free()
    return rows


def suite_cpu(bench: Bench, args):
    """Tiny sizes, fp32: shows the CLI works and the reference path is right; CPU timings."""
    dev, rows = bench.device, []
    B, H, D = 2, 4, 64
    for causal in (False, True):
        for N in CPU_SEQLENS:
            def make():
                return {"q": _randn((B, H, N, D), torch.float32, dev), "k": _randn((B, H, N, D), torch.float32, dev),
                        "v": _randn((B, H, N, D), torch.float32, dev), "causal": causal,
                        "tril": torch.ones(N, N, dtype=torch.bool, device=dev).tril()}
            sets = bench.sets(make, 0)
            ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal=causal, full=True)
            impls = [flashmin_impl("fm"), flashmin_impl("fm-ref", "reference"), manual_impl(), sdpa_impl("sdpa")]
            res = bench.run(impls, sets, ref, torch.float32)
            cfg = {"N": N, "B": B, "H": H, "D": D, "causal": causal, "dtype": "fp32", "auto_kernel": _auto(bench, sets[0])}
            progress(f"[cpu] N={N} causal={int(causal)}", res, "ms", "ms")
            rows.append({"config": cfg, "results": res})
    return rows


SUITES = {"minimal": suite_minimal, "prefill": suite_prefill, "decode": suite_decode, "cpu": suite_cpu}
