"""Running one cell: check each implementation once against float64, then time it; never raise.

A result is a dict: {"status": "ok", "ms", "err", "bad", <rate>} or {"status": "n/a" | "error",
"reason"}, {"status": "oom"}, {"status": "skip"} (not attempted). A kernel or backend that
refuses a config is n/a with its reason, never a rate of 0; a CUDA fault is an error, and sticky
(every later CUDA call in the process fails too), so the run's exit status says so.
"""
from __future__ import annotations

import gc
import math
import warnings

import torch

import flashmin_nn as fm

from .impls import Impl
from .measures import TOLERANCE, Reference
from .timing import log

L2_BYTES = 60 * 2**20           # about an H100's or H200's L2; a set of inputs smaller than this is rotated
MAX_SETS = 16


class Bench:
    """Shared state of a run: device, timer, flashmin's kernel table, options."""

    def __init__(self, device, timer, all_kernels=False):
        self.device, self.timer, self.all_kernels = device, timer, all_kernels
        self.kernels = fm.list_kernels()
        self.matmul = None      # the dense-matmul rate of the run (measures.matmul_rate), for the prefill floor
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def sets(self, make, nbytes):
        """Several copies of the inputs when one fits in L2, so that each call reads cold memory."""
        n = 1 if self.device.type != "cuda" or nbytes >= L2_BYTES else min(MAX_SETS, math.ceil(2 * L2_BYTES / nbytes))
        return [make() for _ in range(n)]

    def measure(self, impl: Impl, sets, ref: Reference, dtype) -> dict:
        """Check once against the reference, then time."""
        if impl.call is None:
            return {"status": "skip"}
        if impl.kernel:
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
                    return _failure(e, "; ".join(why))
                err = ref.error(out) if impl.check else None
                del out
                it = _cycle(sets)
                ms = self.timer(lambda: impl.call(next(it)))
            return {"status": "ok", "ms": ms, "err": err, "bad": err is not None and not err <= tol}
        except torch.cuda.OutOfMemoryError:
            return {"status": "oom"}
        except Exception as e:  # e.g. a failure only seen while timing
            return _failure(e)
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def run(self, impls, sets, ref, dtype, metric=None):
        """{impl name: result} over impls; metric = (key, ms -> rate) adds the rate to each ok result."""
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


def _failure(e, why=""):
    """A refusal is n/a; a CUDA fault (illegal address, launch failure) is an error."""
    text = f"{type(e).__name__}: {e}"
    if "CUDA error" in text or "cudaError" in text:
        return {"status": "error", "reason": short(text)}
    return {"status": "n/a", "reason": short(why or text)}


def _cycle(items):
    while True:
        yield from items


def short(text, n=200):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def progress(cfg_text, results, key, unit, names=None):
    """One line per cell on stderr: each attempted impl's rate (or its status)."""
    parts = []
    for name in names or results:
        r = results.get(name, {})
        if r.get("status") == "ok":
            parts.append(f"{name} {r[key]:.4g}{' BAD' if r['bad'] else ''}")
        elif r.get("status") not in (None, "skip"):
            parts.append(f"{name} {r['status']}")
    log(f"{cfg_text}: " + ", ".join(parts) + f" {unit}")
