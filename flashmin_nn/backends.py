"""Which kernel runs a call: listed, chosen explicitly, forced with a context manager.

In the spirit of `torch.nn.attention.sdpa_kernel`:

    >>> flashmin_nn.list_kernels()                 # every kernel, whether it can run here and why not
    >>> flashmin_nn.choose_kernel(q, k, v)         # what "auto" picks for this call
    >>> with flashmin_nn.use_kernel("minimal"):    # force one (an error if it cannot serve a call)
    ...     out = flashmin_nn.scaled_dot_product_attention(q, k, v)

"auto" picks the fastest kernel that supports the call: on CUDA the order is KERNEL_ORDER; on
CPU it is always "reference". Nothing falls back silently: a forced kernel that cannot run a call
raises, naming the reason.
"""
import contextlib
import contextvars
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor

from . import _ext

# The kernels that live in the CUDA extension (csrc/flashmin_api.cpp's kernel_from_name).
CUDA_KERNELS = ("minimal",)


@dataclass(frozen=True)
class KernelInfo:
    name: str
    available: bool      # can run on this machine (CUDA present, extension buildable or built)
    reason: str          # why not, when unavailable
    description: str


def _cuda_reason() -> Optional[str]:
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return _ext.unavailable_reason()


# Per kernel: what it is, and why it cannot run a call (None when it can).
def _reference_rejects(q: Tensor, k: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    return None


def _minimal_rejects(q: Tensor, k: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    if not q.is_cuda:
        return f"it runs on CUDA tensors; got query.device={q.device}"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"query.dtype={q.dtype} (it takes float16, bfloat16, float32)"
    if q.size(-1) > 256:
        return f"head dim {q.size(-1)} > 256"
    return None


_KERNELS: Dict[str, tuple] = {
    "reference": ("PyTorch tiled online softmax (flashmin_nn/reference.py); any device", _reference_rejects),
    "minimal": ("teaching CUDA kernel: fp32 math, one thread per query row, any shape", _minimal_rejects),
}
KERNEL_NAMES = ("auto",) + tuple(_KERNELS)
KERNEL_ORDER = ("minimal",)          # what "auto" tries on CUDA, fastest first

_current = contextvars.ContextVar("flashmin_kernel", default="auto")


@contextlib.contextmanager
def use_kernel(name: str):
    """Force `name` for every flashmin call in this context ("auto" restores the default choice)."""
    if name not in KERNEL_NAMES:
        raise ValueError(f"kernel={name!r} is not one of {KERNEL_NAMES}")
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def current_kernel() -> str:
    """The kernel forced by the innermost `use_kernel`, or "auto"."""
    return _current.get()


def list_kernels() -> Dict[str, KernelInfo]:
    """Every kernel with whether it can run on this machine and, if not, why."""
    cuda_reason = _cuda_reason()
    out = {}
    for name, (desc, _) in _KERNELS.items():
        reason = None if name == "reference" or name not in CUDA_KERNELS else cuda_reason
        out[name] = KernelInfo(name, reason is None, reason or "", desc)
    return out


def rejection(name: str, q: Tensor, k: Tensor, attn_mask: Optional[Tensor] = None) -> Optional[str]:
    """Why kernel `name` cannot run this call, or None if it can."""
    return _KERNELS[name][1](q, k, attn_mask)


def choose_kernel(query: Tensor, key: Tensor, value: Optional[Tensor] = None,
                  attn_mask: Optional[Tensor] = None, is_causal: bool = False) -> str:
    """The kernel "auto" picks for a call with these (B, H, L, D) tensors."""
    if not query.is_cuda:
        return "reference"
    for name in KERNEL_ORDER:
        if rejection(name, query, key, attn_mask) is None:
            return name
    raise RuntimeError(f"no flashmin CUDA kernel supports query.dtype={query.dtype}, head dim {query.size(-1)}")


def resolve(q: Tensor, k: Tensor, attn_mask: Optional[Tensor]) -> str:
    """The concrete kernel for this call: the forced one (checked) or the "auto" choice."""
    name = _current.get()
    if name == "auto":
        return choose_kernel(q, k, None, attn_mask)
    why = rejection(name, q, k, attn_mask)
    if why is not None:
        raise RuntimeError(f"flashmin kernel {name!r} (forced with use_kernel) cannot run this call: {why}")
    return name
