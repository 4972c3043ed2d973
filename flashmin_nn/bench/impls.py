"""The implementations compared: one `Impl` per column of a table.

Every attention impl takes a dict of inputs ("q", "k", "v" as (B, H, L, D), "causal", "gqa", and
for manual attention "tril") and returns the output as (B, H, L, D). The readers (`read-*`) only
read K and V once, to show the memory's ceiling for the same bytes; they return nothing to check.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashmin_nn as fm

from . import readers


@dataclass
class Impl:
    """One column of a table: how to call it on a set of inputs and what to enter around it."""
    name: str
    call: Optional[Callable[[dict], Optional[torch.Tensor]]]   # inputs -> out; None = not attempted
    ctx: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    dtype: Optional[torch.dtype] = None               # dtype of its inputs, for the tolerance
    kernel: Optional[str] = None                      # a forced flashmin kernel
    is_flashmin: bool = False
    check: bool = True                                # compare the output with the float64 reference


def _qkv(x, suffix):
    return x["q" + suffix], x["k" + suffix], x["v" + suffix]


def flashmin_impl(name, kernel=None, suffix="", dtype=None):
    """flashmin.scaled_dot_product_attention, "auto" or with one kernel forced (use_kernel)."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        return fm.scaled_dot_product_attention(q, k, v, is_causal=x["causal"], enable_gqa=x.get("gqa", False))
    ctx = (lambda: fm.use_kernel(kernel)) if kernel else contextlib.nullcontext
    return Impl(name, call, ctx, dtype, kernel, is_flashmin=True)


def forced_impls(kernels, prefix="fm-"):
    """One column per forced flashmin kernel (--fm-kernels)."""
    return [flashmin_impl(prefix + name, name) for name in kernels]


def kvcache_impl(name="fm-kvcache"):
    """flashmin.flash_attn_with_kvcache on a (B, L, H, D) cache; output back to (B, H, 1, D)."""
    def call(x):
        out = fm.flash_attn_with_kvcache(q=x["q"].transpose(1, 2), k_cache=x["k_cache"], v_cache=x["v_cache"])
        return out.transpose(1, 2)
    return Impl(name, call, is_flashmin=True)


SDPA_BACKENDS = {"sdpa-flash": SDPBackend.FLASH_ATTENTION, "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
                 "sdpa-mem-eff": SDPBackend.EFFICIENT_ATTENTION, "sdpa-math": SDPBackend.MATH}


def sdpa_impl(name, suffix="", dtype=None, enabled=True):
    """torch SDPA: forced to one backend by its name (SDPA_BACKENDS), else ("sdpa") its own choice."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        return F.scaled_dot_product_attention(q, k, v, is_causal=x["causal"], enable_gqa=x.get("gqa", False))
    backend = SDPA_BACKENDS.get(name)
    ctx = (lambda: sdpa_kernel(backend)) if backend is not None else contextlib.nullcontext
    return Impl(name, call if enabled else None, ctx, dtype)


def manual_impl(name="manual", suffix="", dtype=None, enabled=True):
    """What a model without fused attention does: matmul, softmax, matmul, in the input dtype."""
    def call(x):
        q, k, v = _qkv(x, suffix)
        if k.shape[1] != q.shape[1]:                                              # GQA: copy the kv heads
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)                   # (B, H, L, S)
        if x["causal"]:
            s = s.masked_fill(~x["tril"], float("-inf"))
        return torch.softmax(s, dim=-1) @ v                                       # (B, H, L, D)
    return Impl(name, call if enabled else None, dtype=dtype)


def reader_impls(device):
    """The read ceiling: pure readers of K and V, each read once (torch.sum; on CUDA a Triton sweep
    with 2 and 8 programs per SM)."""
    def torch_sum(x):
        x["k"].sum(dtype=torch.float32)
        x["v"].sum(dtype=torch.float32)
    impls = [Impl("read-sum", torch_sum, check=False)]
    for per_sm in readers.GRIDS_PER_SM:
        sweep = readers.triton_sweep_reader(device, per_sm)
        if sweep is not None:
            impls.append(Impl(f"read-triton-{per_sm}x", lambda x, sweep=sweep: sweep(x["k"], x["v"]), check=False))
    return impls
