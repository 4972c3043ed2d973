"""How a cell is timed: the median of per-call timings after warm-up, the L2 flushed before each call.

On CUDA this is `triton.testing.do_bench(fn, return_mode="median")` when triton imports (it
writes a 256 MB buffer before every call, so each call starts from a cold L2), and the same
method in a loop of our own when it does not. On the CPU it is `time.perf_counter` around each
call, for the cpu suite and for `--device cpu`.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

_flush_buffer = None


def log(msg: str = "", end: str = "\n") -> None:
    """Progress goes to stderr, so stdout keeps only the tables."""
    print(msg, end=end, file=sys.stderr, flush=True)


def _cuda_event_median(fn, warmup_ms, rep_ms):
    """triton's do_bench, restated: flush L2 before every call, time each call, take the median."""
    global _flush_buffer
    if _flush_buffer is None:  # 256 MB: writing it evicts every line of a 50-60 MB L2
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
    """Returns (fn -> median ms, a description of the method)."""
    if device.type != "cuda":
        return (lambda fn: _cpu_median(fn, warmup_ms, rep_ms)), "time.perf_counter (CPU)"
    try:
        from triton.testing import do_bench

        return (lambda fn: float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")),
                "triton.testing.do_bench (median, L2 flushed)")
    except Exception:  # no triton, or a triton that cannot start: the same method, our own loop
        return (lambda fn: _cuda_event_median(fn, warmup_ms, rep_ms)), "CUDA events (median, L2 flushed, own loop)"
