"""Benchmark flashmin against PyTorch's own attention, every competitor measured in the same run.

    python -m flashmin_nn.bench                              # every GPU suite, one table each
    python -m flashmin_nn.bench --suite prefill --hdims 128 --seqlens 1k,4k,16k
    python -m flashmin_nn.bench --quick --json bench_out/run.json --plot bench_out/run.png

Suites (--suite, a comma list; default: minimal,prefill,decode with CUDA, cpu without)
  minimal  the teaching-kernel table of ANCHORS.md: B=16 (B=8 at N=1), H=12, D=64, fp32,
           N in {64, 100, 256, 1024, 1}. flashmin's minimal kernel (forced) against manual
           matmul-softmax-matmul in fp32 and SDPA in fp16 (flashmin auto in fp16 beside it), the
           minimal kernel's error against float64, and the PUBLISHED times of the original
           flash-attention-minimal kernel (hard-coded from ANCHORS.md, not measured here).
  prefill  FlashAttention's convention: B * N = 16384 tokens, H * D = 2048, fp16 (--dtype bf16),
           (B, H, N, D) inputs, hdim x causal x N. TFLOP/s for flashmin (auto and each kernel
           forced) beside SDPA forced to each backend, SDPA's default choice and manual attention.
  decode   one query token against a KV cache of L tokens, B=8, (H, D) in {(32, 128), (12, 64)}.
           GB/s (and microseconds) for the same line-up, plus flash_attn_with_kvcache if present.
  cpu      a small sanity run on the CPU (flashmin's reference path against manual attention
           and torch SDPA); what runs when no GPU is present. Its numbers are CPU timings.

Conventions, shared by every row so that ratios are fair
  - FLOPs = 4 * B * H * N^2 * D, halved when causal (two matmuls, 2 FLOPs per multiply-add).
  - decode bytes = K + V read once = 2 * B * Hkv * L * D * element size.
  - time = median of per-call CUDA-event timings after warm-up, L2 flushed before each call
    (triton.testing.do_bench when triton imports, an equivalent loop here otherwise); inputs
    rotate among several copies when one set fits in L2, so the cache is not what is measured.
  - ratios are speed-ups: the other's time / flashmin's time (> 1: flashmin is faster).
  - every result is checked once per config against float64 on sampled rows (all rows in the
    minimal and cpu suites): err = max|out - ref| / max|ref|. Above the dtype's tolerance the
    cell says BAD, so a fast wrong kernel cannot look good; any BAD flashmin cell makes the
    exit status 1.
  - a kernel or backend that refuses a config prints n/a, with the reason in the notes below
    the table; "-" means not attempted (e.g. the slow minimal kernel at large N), oom = out of
    memory, ERROR = a CUDA fault (sticky: the exit status is 1 and later cells are suspect).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

import flashmin_nn as fm

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # torch < 2.3: no per-backend forcing, only SDPA's default
    SDPBackend = sdpa_kernel = None

PREFILL_TOKENS = 16384          # B * N, FlashAttention's benchmark convention
PREFILL_HIDDEN = 2048           # H * D
PREFILL_SEQLENS = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
QUICK_SEQLENS = [512, 2048, 8192]
DECODE_SHAPES = [(8, 32, 128), (8, 12, 64)]     # (B, H, D); (8, 12, 64) is GPT-2 small
DECODE_KVLENS = [1024, 4096, 16384, 65536]
QUICK_KVLENS = [1024, 16384]
MINIMAL_SEQLENS = [64, 100, 256, 1024, 1]
MINIMAL_MAX_N = 1024            # above this the minimal kernel only runs with --all-kernels (slow)
MATH_MAX_N = 1024               # SDPA's math backend materialises N x N in fp32: small N only

# Published figures, NOT measured here: the original flash-attention-minimal kernel (fp32, one
# thread per query row, 32x32 tiles) on an H100 80GB, B=16 (B=8 at N=1), H=12, D=64, in ms,
# from ANCHORS.md. They only anchor the "x faster than original" column.
ORIGINAL_MINIMAL_PUBLISHED_MS = {64: 0.805, 100: 2.99, 256: 11.6, 1024: 185.6, 1: 0.203}

L2_BYTES = 50 * 2**20           # H100 L2; a set of inputs smaller than this is rotated
MAX_SETS = 16
TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-3, torch.float16: 2e-2, torch.bfloat16: 3e-2}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def log(msg: str = "", end: str = "\n") -> None:
    """Progress goes to stderr so stdout keeps only the tables."""
    print(msg, end=end, file=sys.stderr, flush=True)


def attention_flops(B, H, N, D, causal):
    """The one FLOP formula: two N x N x D matmuls; causal does half the work."""
    flops = 4 * B * H * N * N * D
    return flops // 2 if causal else flops


def decode_bytes(B, Hkv, L, D, elem_size):
    """Decode is memory bound: count K and V read once."""
    return 2 * B * Hkv * L * D * elem_size


# ----------------------------------------------------------------------------- timing

_flush_buffer = None


def _cuda_event_median(fn, warmup_ms, rep_ms):
    """triton's do_bench, restated: flush L2 before every call, time each call, take the median."""
    global _flush_buffer
    if _flush_buffer is None:  # 256 MB: writing it evicts every line of a 50 MB L2
        _flush_buffer = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
    flush = _flush_buffer
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        flush.zero_()
        fn()
    end.record()
    torch.cuda.synchronize()
    estimate = max(start.elapsed_time(end) / 5, 1e-3)
    for _ in range(max(1, int(warmup_ms / estimate))):
        fn()
    n = min(max(1, int(rep_ms / estimate)), 10000)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for s, e in zip(starts, ends):
        flush.zero_()
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))


def _cpu_median(fn, warmup_ms, rep_ms):
    fn()
    deadline = time.perf_counter() + warmup_ms / 1e3
    while time.perf_counter() < deadline:
        fn()
    times, deadline = [], time.perf_counter() + rep_ms / 1e3
    while len(times) < 10 or time.perf_counter() < deadline:  # enough samples that a stall is not the median
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def make_timer(device, warmup_ms, rep_ms):
    """Returns (fn -> median ms, description)."""
    if device.type != "cuda":
        return (lambda fn: _cpu_median(fn, warmup_ms, rep_ms)), "time.perf_counter (CPU)"
    try:
        from triton.testing import do_bench

        return (lambda fn: float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")),
                "triton.testing.do_bench (median)")
    except Exception:  # no triton, or a triton that cannot start: same method, own loop
        return (lambda fn: _cuda_event_median(fn, warmup_ms, rep_ms)), "CUDA events (median, own loop)"


# ----------------------------------------------------------------------------- correctness

class Reference:
    """float64 attention on a sample of (batch, head, query row), computed once per config.

    Samples the first and last batch and head and up to `max_rows` query rows (always the first
    and the last), or everything when `full`. Causal is aligned so that query i sees key j iff
    j <= i + offset (top-left, torch's meaning, is offset 0).
    """

    def __init__(self, q, k, v, causal=False, offset=0, full=False, max_rows=128):
        B, H, L, D = q.shape
        dev = q.device
        if full:
            self.b, self.h, self.rows = (torch.arange(n, device=dev) for n in (B, H, L))
        else:
            self.b = torch.tensor(sorted({0, B - 1}), device=dev)
            self.h = torch.tensor(sorted({0, H - 1}), device=dev)
            n = min(L, max_rows)
            self.rows = torch.linspace(0, L - 1, n, device=dev).round().long().unique()
        kv_heads = self.h // (H // k.shape[1])          # GQA: query head h reads kv head h // group
        qs = self._pick(q).double()                                              # (b, h, r, D)
        ks = k.index_select(0, self.b).index_select(1, kv_heads).double()        # (b, h, S, D)
        vs = v.index_select(0, self.b).index_select(1, kv_heads).double()
        s = qs @ ks.transpose(-1, -2) / math.sqrt(D)                              # (b, h, r, S)
        if causal:
            keys = torch.arange(k.shape[2], device=dev)
            s = s.masked_fill(keys[None, :] > self.rows[:, None] + offset, float("-inf"))
        self.out = torch.softmax(s, dim=-1) @ vs                                  # (b, h, r, D)
        self.scale = self.out.abs().max().clamp_min(1e-30)

    def _pick(self, x):
        return x.index_select(0, self.b).index_select(1, self.h).index_select(2, self.rows)

    def error(self, out):
        """max|out - ref| / max|ref| on the sample; inf when anything is NaN or inf."""
        o = self._pick(out).double()
        if not torch.isfinite(o).all():
            return float("inf")
        return ((o - self.out).abs().max() / self.scale).item()


# ----------------------------------------------------------------------------- implementations

@dataclass
class Impl:
    """One column of a table: how to call it on a set of inputs and what to enter around it."""
    name: str
    call: Optional[Callable[[dict], torch.Tensor]]   # inputs -> out (B, H, L, D); None = not attempted
    ctx: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    dtype: Optional[torch.dtype] = None               # dtype of its inputs, for the tolerance
    kernel: Optional[str] = None                      # a forced flashmin kernel
    is_flashmin: bool = False


def _qkv(x, suffix):
    return x["q" + suffix], x["k" + suffix], x["v" + suffix]


def flashmin_impl(name, kernel=None, suffix="", dtype=None):
    """flashmin.scaled_dot_product_attention, "auto" or with one kernel forced."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        return fm.scaled_dot_product_attention(q, k, v, is_causal=x["causal"])
    ctx = (lambda: fm.use_kernel(kernel)) if kernel else contextlib.nullcontext
    return Impl(name, call, ctx, dtype, kernel, is_flashmin=True)


def kvcache_impl(name="fm-kvcache"):
    """flashmin.flash_attn_with_kvcache on a (B, L, H, D) cache; output back to (B, H, 1, D)."""
    def call(x):
        out = fm.flash_attn_with_kvcache(x["q"].transpose(1, 2), x["k_cache"], x["v_cache"])
        return (out[0] if isinstance(out, tuple) else out).transpose(1, 2)
    return Impl(name, call, is_flashmin=True)


SDPA_BACKENDS = {"sdpa-flash": "FLASH_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION",
                 "sdpa-mem-eff": "EFFICIENT_ATTENTION", "sdpa-math": "MATH"}


def sdpa_impl(name, suffix="", dtype=None, enabled=True):
    """torch SDPA; forced to one backend by its name (see SDPA_BACKENDS), else its default choice."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        return F.scaled_dot_product_attention(q, k, v, is_causal=x["causal"])
    backend = SDPA_BACKENDS.get(name)
    if backend is not None and sdpa_kernel is None:
        return Impl(name, None)
    ctx = (lambda: sdpa_kernel(getattr(SDPBackend, backend))) if backend else contextlib.nullcontext
    return Impl(name, call if enabled else None, ctx, dtype)


def manual_impl(name="manual", suffix="", dtype=None, enabled=True):
    """What a model without fused attention does: matmul, softmax, matmul, in the input dtype."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)                   # (B, H, L, S)
        if x["causal"]:
            s = s.masked_fill(~x["tril"], float("-inf"))
        return torch.softmax(s, dim=-1) @ v                                       # (B, H, L, D)
    return Impl(name, call if enabled else None, dtype=dtype)


# ----------------------------------------------------------------------------- running one cell

class Bench:
    """Shared state of a run: device, timer, flashmin's kernel table, results."""

    def __init__(self, device, timer, all_kernels):
        self.device, self.timer, self.all_kernels = device, timer, all_kernels
        self.kernels = fm.list_kernels() if hasattr(fm, "list_kernels") else {}
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def sets(self, make, nbytes):
        """Several copies of the inputs when one fits in L2, so each call reads cold memory."""
        n = 1 if self.device.type != "cuda" or nbytes >= L2_BYTES else min(MAX_SETS, math.ceil(2 * L2_BYTES / nbytes))
        return [make() for _ in range(n)]

    def measure(self, impl: Impl, sets, ref: Reference, dtype) -> dict:
        """Check once against the reference, then time; never raises."""
        if impl.call is None:
            return {"status": "skip"}
        if impl.kernel and self.kernels:
            info = self.kernels.get(impl.kernel)
            if info is None:
                return {"status": "n/a", "reason": f"flashmin has no kernel {impl.kernel!r} (list_kernels())"}
            if not info.available:
                return {"status": "n/a", "reason": f"kernel {impl.kernel!r} unavailable: {info.reason}"}
        tol = TOLERANCE[impl.dtype or dtype]
        try:
            with warnings.catch_warnings(record=True) as caught, impl.ctx():
                warnings.simplefilter("always")
                try:
                    out = impl.call(sets[0])
                    self.sync()
                except torch.cuda.OutOfMemoryError:
                    raise
                except Exception as e:
                    # SDPA explains a refusal in its warnings; the exception only says "no kernel"
                    why = [str(w.message).strip() for w in caught if "not used because" not in str(w.message)]
                    return self._failure(e, "; ".join(why))
                err = ref.error(out)
                del out
                it = _cycle(sets)
                ms = self.timer(lambda: impl.call(next(it)))
            return {"status": "ok", "ms": ms, "err": err, "bad": not err <= tol}
        except torch.cuda.OutOfMemoryError:
            return {"status": "oom"}
        except Exception as e:  # e.g. a failure only seen while timing
            return self._failure(e)
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @staticmethod
    def _failure(e, why=""):
        """A refusal is n/a; a CUDA fault (illegal address, launch failure) is an error, and sticky:
        every later CUDA call in this process fails too, so the run's exit status says so."""
        text = f"{type(e).__name__}: {e}"
        if "CUDA error" in text or "cudaError" in text:
            return {"status": "error", "reason": _short(text)}
        return {"status": "n/a", "reason": _short(why or text)}

    def run(self, impls, sets, ref, dtype, metric=None):
        results = {}
        for impl in impls:
            r = self.measure(impl, sets, ref, dtype)
            if metric and r["status"] == "ok":
                r[metric[0]] = metric[1](r["ms"])
            r["flashmin"] = impl.is_flashmin
            results[impl.name] = r
        return results

    def auto_kernel(self, q, k, v, causal):
        """What flashmin's "auto" picks here, for the table; "?" if it cannot say."""
        try:
            return str(fm.choose_kernel(q, k, v, attn_mask=None, is_causal=causal))
        except Exception:
            return "?"

    def free(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _cycle(items):
    while True:
        yield from items


def _short(text, n=200):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _randn(shape, dtype, device):
    return torch.randn(shape, dtype=dtype, device=device)


def _progress(cfg_text, results, key, unit, names):
    parts = []
    for name in names:
        r = results.get(name, {})
        if r.get("status") == "ok":
            parts.append(f"{name} {r[key]:.4g}{' BAD' if r['bad'] else ''}")
        elif r.get("status") not in (None, "skip"):
            parts.append(f"{name} {r['status']}")
    log(f"{cfg_text}: " + ", ".join(parts) + f" {unit}")


# ----------------------------------------------------------------------------- suites

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
        _progress(f"[minimal] N={N}", res, "ms", "ms", [i.name for i in impls])
        rows.append({"config": {"N": N, "B": B, "H": H, "D": D, "dtype": "fp32",
                                "original_published_ms": ORIGINAL_MINIMAL_PUBLISHED_MS.get(N)},
                     "results": res})
        del sets, ref
        bench.free()
    return rows


def suite_prefill(bench: Bench, args):
    dtype, dev, rows = DTYPES[args.dtype], bench.device, []
    for D in args.hdims:
        for causal in (False, True):
            for N in args.seqlens:
                B, H = max(1, args.tokens // N), max(1, PREFILL_HIDDEN // D)
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
                tril = torch.ones(N, N, dtype=torch.bool, device=dev).tril() if causal else None
                for x in sets:
                    x["tril"] = tril
                ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal=causal)
                small = N <= MINIMAL_MAX_N or args.all_kernels
                impls = [flashmin_impl("fm"),
                         flashmin_impl("fm-tc", "tensor_core"),
                         flashmin_impl("fm-min", "minimal") if small else Impl("fm-min", None),
                         sdpa_impl("sdpa-flash"), sdpa_impl("sdpa-cudnn"), sdpa_impl("sdpa-mem-eff"),
                         sdpa_impl("sdpa-math", enabled=N <= MATH_MAX_N or args.all_kernels),
                         sdpa_impl("sdpa"), manual_impl()]
                flops = attention_flops(B, H, N, D, causal)
                res = bench.run(impls, sets, ref, dtype, ("tflops", lambda ms: flops / ms / 1e9))
                cfg = {"hdim": D, "causal": causal, "N": N, "B": B, "H": H, "dtype": args.dtype,
                       "flops": flops, "auto_kernel": bench.auto_kernel(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal)}
                _progress(text, res, "tflops", "TFLOP/s", ["fm", "fm-tc", "sdpa-flash", "sdpa-cudnn", "sdpa"])
                rows.append({"config": cfg, "results": res})
                del sets, ref, tril
                bench.free()
    return rows


def suite_decode(bench: Bench, args):
    dtype, dev, rows = DTYPES[args.dtype], bench.device, []
    has_kvcache = hasattr(fm, "flash_attn_with_kvcache")
    for B, H, D in DECODE_SHAPES:
        for L in args.kvlens:
            text = f"[decode] B={B} H={H} D={D} L={L} {args.dtype}"
            log(text + " ...")

            def make():
                x = {"q": _randn((B, H, 1, D), dtype, dev), "k": _randn((B, H, L, D), dtype, dev),
                     "v": _randn((B, H, L, D), dtype, dev), "causal": False, "tril": None}
                if has_kvcache:  # FlashAttention's cache layout, (B, L, H, D)
                    x["k_cache"] = x["k"].transpose(1, 2).contiguous()
                    x["v_cache"] = x["v"].transpose(1, 2).contiguous()
                return x
            nbytes = decode_bytes(B, H, L, D, dtype.itemsize)
            try:
                sets = bench.sets(make, nbytes)
            except torch.cuda.OutOfMemoryError:
                log(f"{text}: inputs do not fit, skipped")
                bench.free()
                continue
            ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"])
            extra = [flashmin_impl("fm-tc", "tensor_core"), flashmin_impl("fm-min", "minimal")] if bench.all_kernels else []
            impls = [flashmin_impl("fm"), flashmin_impl("fm-decode", "decode"), *extra,
                     kvcache_impl() if has_kvcache else Impl("fm-kvcache", None),
                     sdpa_impl("sdpa-flash"), sdpa_impl("sdpa-cudnn"), sdpa_impl("sdpa-mem-eff"),
                     sdpa_impl("sdpa"), manual_impl()]
            res = bench.run(impls, sets, ref, dtype, ("gbps", lambda ms: nbytes / ms / 1e6))
            cfg = {"B": B, "H": H, "Hkv": H, "D": D, "L": L, "dtype": args.dtype, "bytes": nbytes,
                   "auto_kernel": bench.auto_kernel(sets[0]["q"], sets[0]["k"], sets[0]["v"], False)}
            _progress(text, res, "gbps", "GB/s", ["fm", "fm-decode", "fm-kvcache", "sdpa-flash", "sdpa"])
            rows.append({"config": cfg, "results": res})
            del sets, ref
            bench.free()
    return rows


def suite_cpu(bench: Bench, args):
    """Tiny sizes, fp32: shows the CLI works and the reference path is right; CPU timings."""
    dev, rows = bench.device, []
    B, H, D = 2, 4, 64
    for causal in (False, True):
        for N in [1, 17, 64, 100, 256]:
            def make():
                return {"q": _randn((B, H, N, D), torch.float32, dev), "k": _randn((B, H, N, D), torch.float32, dev),
                        "v": _randn((B, H, N, D), torch.float32, dev), "causal": causal,
                        "tril": torch.ones(N, N, dtype=torch.bool, device=dev).tril()}
            sets = bench.sets(make, 0)
            ref = Reference(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal=causal, full=True)
            impls = [flashmin_impl("fm"), flashmin_impl("fm-ref", "reference"), manual_impl(), sdpa_impl("sdpa")]
            res = bench.run(impls, sets, ref, torch.float32)
            cfg = {"N": N, "B": B, "H": H, "D": D, "causal": causal, "dtype": "fp32",
                   "auto_kernel": bench.auto_kernel(sets[0]["q"], sets[0]["k"], sets[0]["v"], causal)}
            _progress(f"[cpu] N={N} causal={int(causal)}", res, "ms", "ms", [i.name for i in impls])
            rows.append({"config": cfg, "results": res})
    return rows


SUITES = {"minimal": suite_minimal, "prefill": suite_prefill, "decode": suite_decode, "cpu": suite_cpu}


# ----------------------------------------------------------------------------- tables

class Notes:
    """Footnotes: each distinct n/a reason gets a number, shown as n/a[k] in the cells."""

    def __init__(self):
        self.reasons = {}

    def ref(self, reason):
        return self.reasons.setdefault(reason, len(self.reasons) + 1)

    def lines(self):
        return [f"  [{k}] {r}" for r, k in self.reasons.items()]


def cell(r, notes, key, fmt):
    """One result as text: the metric (with BAD when wrong), n/a[k], oom, or - (not attempted)."""
    if r is None or r["status"] == "skip":
        return "-"
    if r["status"] in ("n/a", "error"):
        return f"{'n/a' if r['status'] == 'n/a' else 'ERROR'}[{notes.ref(r['reason'])}]"
    if r["status"] != "ok":
        return r["status"]
    return fmt(r[key]) + (" BAD" if r["bad"] else "")


def ratio(num, den, key, inverse=False):
    """Speed-up of `den` (flashmin) over `num` (the other): for ms it is num/den, for rates den/num."""
    if not (num and den and num.get("status") == "ok" and den.get("status") == "ok"):
        return "-"
    a, b = num[key], den[key]
    return f"{(b / a if inverse else a / b):.2f}x"


def format_table(headers, body):
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(row) for row in body)])


def _num(v):
    """Rates as ANCHORS.md prints them (412, 2214), small ones (CPU) still readable."""
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


# Short column headers; the JSON keeps the full names.
HEADER = {"sdpa-flash": "flash", "sdpa-cudnn": "cudnn", "sdpa-mem-eff": "mem-eff", "sdpa-math": "math"}


def _err(r):
    return f"{r['err']:.1e}" if r and r.get("status") == "ok" else "-"


def table_minimal(rows):
    notes, body = Notes(), []
    ms = lambda v: f"{v:.3f}"
    for row in rows:
        c, res = row["config"], row["results"]
        mn, man = res["minimal"], res["manual fp32"]
        orig = c["original_published_ms"]
        faster = f"{orig / mn['ms']:.1f}x" if orig and mn["status"] == "ok" else "-"
        body.append([str(c["N"]), str(c["B"]), cell(mn, notes, "ms", ms), _err(mn),
                     cell(man, notes, "ms", ms), ratio(man, mn, "ms"),
                     cell(res["sdpa fp16"], notes, "ms", ms), cell(res["fm fp16"], notes, "ms", ms),
                     f"{orig}" if orig else "-", faster])
    headers = ["N", "B", "minimal ms", "err", "manual fp32 ms", "manual/minimal",
               "sdpa fp16 ms", "fm fp16 ms", "original ms*", "x faster than original*"]
    legend = ["H=12, D=64, fp32 unless marked; err = minimal vs float64, max|diff|/max|ref|.",
              "manual/minimal = manual time / minimal time (> 1: the minimal kernel is faster).",
              "* PUBLISHED figures of the original flash-attention-minimal kernel (ANCHORS.md, H100 80GB),"
              " not measured in this run."]
    return format_table(headers, body), legend + notes.lines()


def table_rates(rows, names, key, fmt, lead, extra):
    """prefill and decode: one rate column per implementation, then ratios and flashmin's error."""
    notes, body = Notes(), []
    present = [n for n in names if any(r["results"].get(n, {}).get("status", "skip") != "skip" for r in rows)]
    for row in rows:
        res = row["results"]
        body.append([*lead(row["config"]), row["config"].get("auto_kernel", "?"),
                     *(cell(res.get(n), notes, key, fmt) for n in present),
                     *(f(res) for _, f in extra), _err(res.get("fm"))])
    headers = [*LEAD_HEADERS[key], "auto", *(HEADER.get(n, n) for n in present), *(h for h, _ in extra), "fm err"]
    return format_table(headers, body), notes


LEAD_HEADERS = {"tflops": ["hdim", "causal", "N"], "gbps": ["B", "H", "D", "L"]}


def table_prefill(rows):
    names = ["fm", "fm-tc", "fm-min", "sdpa-flash", "sdpa-cudnn", "sdpa-mem-eff", "sdpa-math", "sdpa", "manual"]
    extra = [("fm/flash", lambda r: ratio(r.get("sdpa-flash"), r.get("fm"), "tflops", inverse=True)),
             ("fm/cudnn", lambda r: ratio(r.get("sdpa-cudnn"), r.get("fm"), "tflops", inverse=True))]
    lead = lambda c: [str(c["hdim"]), "yes" if c["causal"] else "no", str(c["N"])]
    table, notes = table_rates(rows, names, "tflops", _num, lead, extra)
    c = rows[0]["config"] if rows else {"B": "?", "N": "?", "H": "?", "hdim": "?", "dtype": "?"}
    legend = [f"TFLOP/s = 4*B*H*N^2*D (halved when causal) / time; (B, H, N, D) inputs, {c['dtype']},"
              f" B*N = {c['B'] * c['N'] if rows else '?'} tokens, H*hdim = {PREFILL_HIDDEN}.",
              "fm = flashmin auto (its kernel in 'auto'), fm-tc / fm-min = flashmin with tensor_core / minimal"
              " forced; flash, cudnn, mem-eff, math = torch SDPA forced to that backend (sdpa_kernel),"
              " sdpa = SDPA's own choice, manual = matmul-softmax-matmul in the input dtype.",
              "fm/X = flashmin auto's speed-up over X (> 1: flashmin faster). - = not attempted."]
    return table, legend + notes.lines()


def table_decode(rows):
    names = ["fm", "fm-decode", "fm-tc", "fm-min", "fm-kvcache", "sdpa-flash", "sdpa-cudnn",
             "sdpa-mem-eff", "sdpa", "manual"]
    us = lambda name: lambda r: f"{r[name]['ms'] * 1e3:.1f}" if r.get(name, {}).get("status") == "ok" else "-"
    extra = [("fm us", us("fm")), ("sdpa us", us("sdpa")),
             ("fm/sdpa", lambda r: ratio(r.get("sdpa"), r.get("fm"), "gbps", inverse=True)),
             ("fm/flash", lambda r: ratio(r.get("sdpa-flash"), r.get("fm"), "gbps", inverse=True))]
    lead = lambda c: [str(c["B"]), str(c["H"]), str(c["D"]), str(c["L"])]
    table, notes = table_rates(rows, names, "gbps", _num, lead, extra)
    legend = ["GB/s = K + V bytes read once (2*B*H*L*D*elem) / time; one query token, non-causal,"
              f" {rows[0]['config']['dtype'] if rows else ''}, (B, H, L, D) cache. us = microseconds per call.",
              "fm = flashmin auto (its kernel in 'auto'), fm-decode = the decode kernel forced, fm-kvcache ="
              " flash_attn_with_kvcache on a (B, L, H, D) cache; flash, cudnn, mem-eff = torch SDPA forced to"
              " that backend, sdpa = SDPA's own choice, manual = matmul-softmax-matmul.",
              "fm/X = flashmin auto's speed-up over X (> 1: flashmin faster). - = not attempted."]
    return table, legend + notes.lines()


def table_cpu(rows):
    notes, body = Notes(), []
    ms = lambda v: f"{v:.3f}"
    for row in rows:
        c, res = row["config"], row["results"]
        body.append([str(c["N"]), "yes" if c["causal"] else "no", c["auto_kernel"],
                     *(cell(res[n], notes, "ms", ms) for n in ("fm", "fm-ref", "manual", "sdpa")),
                     ratio(res["manual"], res["fm"], "ms"), _err(res["fm"])])
    headers = ["N", "causal", "auto", "fm ms", "fm-ref ms", "manual ms", "sdpa ms", "manual/fm", "fm err"]
    legend = ["CPU timings (B=2, H=4, D=64, fp32): a sanity run, not a performance claim."]
    return format_table(headers, body), legend + notes.lines()


TABLES = {"minimal": table_minimal, "prefill": table_prefill, "decode": table_decode, "cpu": table_cpu}
TITLES = {"minimal": "minimal: the teaching kernel (ms, lower is better)",
          "prefill": "prefill: TFLOP/s, higher is better",
          "decode": "decode: GB/s, higher is better",
          "cpu": "cpu sanity: ms, lower is better"}


# ----------------------------------------------------------------------------- plot

def _panels(suite, rows):
    """(title, xlabel, ylabel, log-y, {impl: [(x, y)]}) per panel."""
    spec = {"minimal": (lambda c: "minimal suite (fp32, B=16, H=12, D=64)", "N", "ms", "ms", True),
            "prefill": (lambda c: f"prefill hdim={c['hdim']} causal={int(c['causal'])} {c['dtype']}", "N", "tflops", "TFLOP/s", False),
            "decode": (lambda c: f"decode B={c['B']} H={c['H']} D={c['D']} {c['dtype']}", "L", "gbps", "GB/s", False),
            "cpu": (lambda c: f"cpu sanity causal={int(c['causal'])}", "N", "ms", "ms (CPU)", True)}[suite]
    title_of, xkey, key, ylabel, logy = spec
    panels = {}
    for row in rows:
        c = row["config"]
        if suite == "minimal" and c["N"] == 1:
            continue  # B differs at N=1
        lines = panels.setdefault(title_of(c), {})
        for name, r in row["results"].items():
            if r.get("status") == "ok":
                lines.setdefault(name, []).append((c[xkey], r[key]))
    return [(t, xkey, ylabel, logy, lines) for t, lines in panels.items()]


def write_plot(path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not importable, no plot written to {path} (pip install matplotlib)")
        return
    panels = [p for suite, rows in results.items() for p in _panels(suite, rows)]
    if not panels:
        print("note: nothing to plot")
        return
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 4.2 * nrows), squeeze=False)
    for ax, (title, xlabel, ylabel, logy, lines) in zip(axes.flat, panels):
        for name, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=2.5 if name.startswith("fm") else 1.2,
                    ls="-" if name.startswith("fm") else "--", label=name)
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


# ----------------------------------------------------------------------------- CLI

def _ints(text):
    """"128,1k,16k" -> [128, 1024, 16384]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m flashmin_nn.bench",
                                description="flashmin against torch SDPA (each backend) and manual attention, "
                                            "measured in the same run.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--suite", default=None,
                   help="comma list of minimal, prefill, decode, cpu (default: minimal,prefill,decode on CUDA, cpu otherwise)")
    p.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16", help="prefill and decode dtype (default fp16)")
    p.add_argument("--seqlens", type=_ints, default=None, help="prefill N list, e.g. 512,1k,16k")
    p.add_argument("--hdims", type=_ints, default=[64, 128], help="prefill head dims (default 64,128)")
    p.add_argument("--kvlens", type=_ints, default=None, help="decode KV lengths (default 1k,4k,16k,64k)")
    p.add_argument("--tokens", type=int, default=PREFILL_TOKENS, help="prefill B*N (default 16384)")
    p.add_argument("--all-kernels", action="store_true",
                   help="also force the slow kernels everywhere (minimal at any N, sdpa-math at any N, every kernel in decode)")
    p.add_argument("--quick", action="store_true", help="fewer sizes and shorter timing")
    p.add_argument("--warmup", type=float, default=None, help="warm-up per cell, ms (default 25, quick 5)")
    p.add_argument("--rep", type=float, default=None, help="timing per cell, ms (default 100, quick 20)")
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu (slow; checks the bench itself)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write every number, with device and versions, as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG (needs matplotlib)")
    args = p.parse_args(argv)
    args.seqlens = args.seqlens or (QUICK_SEQLENS if args.quick else PREFILL_SEQLENS)
    args.kvlens = args.kvlens or (QUICK_KVLENS if args.quick else DECODE_KVLENS)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 25)
    args.rep = args.rep if args.rep is not None else (20 if args.quick else 100)
    return p, args


def _meta(device, timer_name, bench, args):
    triton_version = None
    with contextlib.suppress(Exception):
        import triton
        triton_version = triton.__version__
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "triton": triton_version, "python": platform.python_version(),
        "flashmin": getattr(fm, "__version__", None), "timer": timer_name,
        "argv": sys.argv[1:], "warmup_ms": args.warmup, "rep_ms": args.rep,
        "kernels": {n: {"available": bool(i.available), "reason": str(i.reason)} for n, i in bench.kernels.items()},
        "conventions": {"flops": "4*B*H*N^2*D, halved when causal", "decode_bytes": "2*B*Hkv*L*D*elem_size",
                        "err": "max|out-ref|/max|ref| vs float64 on sampled rows",
                        "tolerance": {str(k).replace("torch.", ""): v for k, v in TOLERANCE.items()},
                        "original_minimal_published_ms": ORIGINAL_MINIMAL_PUBLISHED_MS},
    }


def _cfg_text(cfg):
    return " ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("flops", "bytes", "auto_kernel", "original_published_ms"))


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    suites = [s.strip() for s in args.suite.split(",") if s.strip()] if args.suite else None
    for s in suites or []:
        if s not in SUITES:
            parser.error(f"unknown suite {s!r}; choose from {', '.join(SUITES)}")
    cuda = torch.cuda.is_available()
    device = torch.device(args.device or ("cuda" if cuda else "cpu"))
    if device.type == "cuda" and not cuda:
        parser.error("--device cuda but torch.cuda.is_available() is False")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # the timers and the L2 flush use the current device
    if suites is None:
        suites = ["minimal", "prefill", "decode"] if device.type == "cuda" else ["cpu"]
    if device.type == "cpu" and args.device is None and suites != ["cpu"]:
        print(f"No CUDA device (torch {torch.__version__}, cuda {torch.version.cuda}): the GPU suites "
              f"({', '.join(s for s in suites if s != 'cpu')}) need one. Running the CPU sanity suite instead; "
              "its numbers are CPU timings, not GPU results. (--device cpu forces the GPU suites onto the CPU.)")
        suites = ["cpu"]
    elif device.type == "cpu":
        print("Running on the CPU: every number below is a CPU timing.")

    torch.manual_seed(args.seed)
    timer, timer_name = make_timer(device, args.warmup, args.rep)
    bench = Bench(device, timer, args.all_kernels)
    meta = _meta(device, timer_name, bench, args)
    log(f"device: {meta['device']} | torch {meta['torch']} | cuda {meta['cuda']} | timer: {timer_name}")
    for name, info in bench.kernels.items():
        log(f"  flashmin kernel {name:12s} {'available' if info.available else 'unavailable: ' + str(info.reason)}")
    if device.type == "cuda":  # the first CUDA call may JIT-build the extension: not inside a timing
        t0 = time.perf_counter()
        try:
            x = torch.randn(1, 1, 8, 64, device=device, dtype=torch.float16)
            fm.scaled_dot_product_attention(x, x, x)
            torch.cuda.synchronize()
            log(f"  flashmin CUDA path ready ({time.perf_counter() - t0:.1f} s)")
        except Exception as e:
            log(f"  flashmin CUDA path failed, its cells will say n/a: {_short(e)}")

    results = {}
    for s in suites:
        results[s] = SUITES[s](bench, args)

    print(f"\nflashmin benchmark | {meta['device']} | torch {meta['torch']} (cuda {meta['cuda']}) | "
          f"{meta['timestamp']} | timer: {timer_name}")
    bad = []
    for s, rows in results.items():
        table, legend = TABLES[s](rows)
        print(f"\n## {TITLES[s]}\n\n{table}\n" + "\n".join(legend))
        bad += [f"{s} {_cfg_text(row['config'])} {name}: {'error' if r['status'] == 'error' else 'err=%.2e' % r['err']}"
                for row in rows for name, r in row["results"].items()
                if r["status"] == "error" or (r.get("flashmin") and r["status"] == "ok" and r["bad"])]

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "suites": results}, f, indent=1, default=str)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        write_plot(args.plot, results)
    if bad:
        print(f"\nBAD: {len(bad)} flashmin result(s) above the error tolerance, or CUDA errors:\n  " + "\n  ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
