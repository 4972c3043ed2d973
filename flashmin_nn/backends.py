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
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor

from . import _ext

# The kernels that live in the CUDA extension (csrc/flashmin_api.cpp's kernel_from_name).
CUDA_KERNELS = ("minimal", "tensor_core", "decode", "prefill_sm90")


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
def _reference_rejects(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    return None


def _minimal_rejects(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    if not q.is_cuda:
        return f"it runs on CUDA tensors; got query.device={q.device}"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"query.dtype={q.dtype} (it takes float16, bfloat16, float32)"
    if q.size(-1) > 256:
        return f"head dim {q.size(-1)} > 256"
    return None


_capability = {}


def _cc_major(device) -> int:
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _capability:
        _capability[idx] = torch.cuda.get_device_capability(idx)[0]
    return _capability[idx]


def _rows_aligned(t: Tensor, compiling: bool) -> bool:
    """Every (b, h, l) row starts on a 16-byte boundary (8 fp16/bf16 elements). Judged from the
    storage offset (PyTorch's allocations start 16-byte aligned; offsets are not traceable, so
    under torch.compile only the strides); the binding checks the actual pointer too."""
    st = t.stride()
    if (st[0] | st[1] | st[2]) & 7:
        return False
    return compiling or (t.storage_offset() * t.element_size()) & 15 == 0


def _tensor_core_rejects(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    if not q.is_cuda:
        return f"it runs on CUDA tensors; got query.device={q.device}"
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"query.dtype={q.dtype} (it takes float16 or bfloat16)"
    if q.size(-1) % 8 != 0 or q.size(-1) > 256:
        return f"head dim {q.size(-1)} (it takes multiples of 8 up to 256)"
    if _cc_major(q.device) < 8:
        return "it needs a GPU of compute capability 8.0 or newer (mma.sync m16n8k16, cp.async)"
    compiling = torch.compiler.is_compiling()
    for t, n in ((q, "query"), (k, "key"), (v, "value")):
        if not _rows_aligned(t, compiling):
            return f"{n} rows are not 16-byte aligned ({n}.stride()={tuple(t.stride())})"
    return None


DECODE_MAX_QUERIES = 16


def _decode_rejects(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    if q.size(2) > DECODE_MAX_QUERIES:   # the cheap tests first: "auto" asks this of every call
        return f"query length {q.size(2)} > {DECODE_MAX_QUERIES} (it serves short queries over long KV caches)"
    if q.size(-1) > 128:
        return f"head dim {q.size(-1)} > 128"
    return _tensor_core_rejects(q, k, v, attn_mask)


def _sm90_built() -> bool:
    """Whether the loaded (or loadable) extension holds the sm_90a code of prefill_sm90."""
    if _ext.unavailable_reason() is not None:
        return False
    return bool(_ext.load().built_with_sm90a())


_sm90_cache = {}


def _prefill_sm90_rejects(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    why = _tensor_core_rejects(q, k, v, attn_mask)
    if why is not None:
        return why
    if _cc_major(q.device) != 9:
        return "it runs on compute capability 9.0 (Hopper) only (wgmma, TMA, setmaxnreg)"
    if "built" not in _sm90_cache:
        _sm90_cache["built"] = _sm90_built()
    if not _sm90_cache["built"]:
        return "this build of the extension has no sm_90a code (build it for compute capability 9.0)"
    for t, n in ((q, "query"), (k, "key"), (v, "value")):
        st, sz = t.stride(), t.shape
        if any(st[d] == 0 and sz[d] > 1 for d in range(3)):
            return f"{n} has a zero stride ({n}.stride()={tuple(st)}): the copy engine needs positive strides"
    return None


_KERNELS: Dict[str, tuple] = {
    "reference": ("PyTorch tiled online softmax (flashmin_nn/reference.py); any device", _reference_rejects),
    "minimal": ("teaching CUDA kernel: fp32 math, one thread per query row, any shape", _minimal_rejects),
    "tensor_core": ("fp16/bf16 mma.sync kernel, FlashAttention-2 class; sm80+, head dims multiple of 8 up to 256",
                    _tensor_core_rejects),
    "decode": ("split-KV tensor-core kernel for 1-16 queries over long KV caches; GQA heads share K/V reads",
               _decode_rejects),
    "prefill_sm90": ("fp16/bf16 Hopper kernel: TMA copies, wgmma, warp-specialised; sm_90 only, head dims multiple of 8 up to 256",
                     _prefill_sm90_rejects),
}
KERNEL_NAMES = ("auto",) + tuple(_KERNELS)
KERNEL_ORDER = ("decode", "tensor_core", "minimal")     # what "auto" tries on CUDA, fastest first

# The forced kernel. A plain module global rather than a ContextVar: torch.compile (Dynamo) reads
# and guards globals, but cannot trace ContextVar.get. use_kernel restores it on exit.
_current = "auto"


@contextlib.contextmanager
def use_kernel(name: str):
    """Force `name` for every flashmin call in this context ("auto" restores the default choice)."""
    global _current
    if name not in KERNEL_NAMES:
        raise ValueError(f"kernel={name!r} is not one of {KERNEL_NAMES}")
    previous, _current = _current, name
    try:
        yield
    finally:
        _current = previous


def current_kernel() -> str:
    """The kernel forced by the innermost `use_kernel`, or "auto"."""
    return _current


def list_kernels() -> Dict[str, KernelInfo]:
    """Every kernel with whether it can run on this machine and, if not, why."""
    cuda_reason = _cuda_reason()
    out = {}
    for name, (desc, _) in _KERNELS.items():
        reason = None if name == "reference" or name not in CUDA_KERNELS else cuda_reason
        out[name] = KernelInfo(name, reason is None, reason or "", desc)
    return out


def rejection(name: str, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None) -> Optional[str]:
    """Why kernel `name` cannot run this call, or None if it can."""
    return _KERNELS[name][1](q, k, v, attn_mask)


# "auto" on CUDA in one pass. Walking KERNEL_ORDER through the reject functions costs a few
# microseconds of host time a call (q.size(i), q.device and _rows_aligned are read again by each
# kernel), which a host-bound decode loop pays once per layer per token. _auto_fast reads each
# attribute once, and the cheap ones (the q.shape and q.stride() tuples, q.get_device()). It
# decides the common calls the way the walk would and returns None for every other call, which
# the walk then decides (tests/test_backends.py checks that the two agree):
#   fp32, head dim <= 256                                                      -> "minimal"
#   fp16/bf16 (q, k, v alike), head dim a multiple of 8 up to 256, a GPU of compute capability
#   >= 8 (known to _capability once the walk has seen the device), every row of q, k, v
#   16-byte aligned                     -> "decode" for <= 16 queries and head dim <= 128,
#                                          else "tensor_core"
_F16, _BF16, _F32 = torch.float16, torch.bfloat16, torch.float32
_is_compiling = torch.compiler.is_compiling


def _auto_fast(q: Tensor, k: Tensor, v: Tensor) -> Optional[str]:
    """The kernel "auto" picks for CUDA tensors q, k, v, or None where the walk must decide."""
    qs, dt = q.shape, q.dtype
    if len(qs) != 4:
        return None
    D = qs[3]
    if dt is _F32:
        return "minimal" if D <= 256 else None
    if ((dt is not _F16 and dt is not _BF16) or k.dtype is not dt or v.dtype is not dt
            or D % 8 or D > 256 or _capability.get(q.get_device(), 0) < 8):
        return None
    # _rows_aligned for q, k and v: with 2-byte elements 16 bytes are 8 elements, for the strides
    # of the row dims and (outside torch.compile) the storage offset.
    qt, kt, vt = q.stride(), k.stride(), v.stride()
    if (qt[0] | qt[1] | qt[2] | kt[0] | kt[1] | kt[2] | vt[0] | vt[1] | vt[2]) & 7:
        return None
    if not _is_compiling() and (q.storage_offset() | k.storage_offset() | v.storage_offset()) & 7:
        return None
    return "decode" if qs[2] <= DECODE_MAX_QUERIES and D <= 128 else "tensor_core"


def _auto_walk(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> str:
    """The kernel "auto" picks on CUDA, by definition: the first of KERNEL_ORDER that accepts."""
    for name in KERNEL_ORDER:
        if rejection(name, q, k, v, attn_mask) is None:
            return name
    raise RuntimeError(f"no flashmin CUDA kernel supports query.dtype={q.dtype}, head dim {q.size(-1)}")


# The CUDA kernels nest: every call "decode" serves, "tensor_core" serves, and every call
# "tensor_core" serves, "minimal" serves. So when "auto" picks kernel a, a forced kernel serves the
# call iff it is a or comes after a in KERNEL_ORDER.
_ORDER_RANK = {name: i for i, name in enumerate(KERNEL_ORDER)}


def choose_kernel(query: Tensor, key: Tensor, value: Optional[Tensor] = None,
                  attn_mask: Optional[Tensor] = None, is_causal: bool = False) -> str:
    """The kernel "auto" picks for a call with these (B, H, L, D) tensors.

    `value` defaults to `key`; `is_causal` is accepted to mirror the call, but no kernel's support
    depends on it, so it does not change the choice."""
    if not query.is_cuda:
        return "reference"
    value = key if value is None else value
    return _auto_fast(query, key, value) or _auto_walk(query, key, value, attn_mask)


def resolve(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> str:
    """The concrete kernel for this call: the forced one (checked) or the "auto" choice."""
    name = _current
    if name == "auto":
        return choose_kernel(q, k, v, attn_mask)
    rank = _ORDER_RANK.get(name)
    if rank is not None and q.is_cuda:
        fast = _auto_fast(q, k, v)
        if fast is not None and _ORDER_RANK[fast] <= rank:
            return name
    why = rejection(name, q, k, v, attn_mask)
    if why is not None:
        raise RuntimeError(f"flashmin kernel {name!r} (forced with use_kernel) cannot run this call: {why}")
    return name
