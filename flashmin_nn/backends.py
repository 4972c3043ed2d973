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
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from . import _ext

@dataclass(frozen=True)
class KernelSpec:
    """What one kernel supports: a row of KERNEL_SPECS, the one table that the reject functions
    (`rejection`), "auto" (`_auto_fast` and the walk), `list_kernels` and the docs
    (`support_table`, docs/internals.md) read. None or () means no limit. The C++ binding
    (csrc/flashmin_api.cpp) re-checks the same limits for anyone calling the op directly;
    tests/test_backends.py checks that the two refuse alike."""
    name: str
    description: str
    aliases: Tuple[str, ...] = ()               # other names use_kernel, rejection and the op accept
    cuda: bool = True                           # runs on CUDA tensors only (False: any device)
    dtypes: Tuple[torch.dtype, ...] = ()        # query (and key, value) dtypes
    head_dim_max: Optional[int] = None
    head_dim_multiple: int = 1
    max_query_len: Optional[int] = None
    min_cc: Optional[int] = None                # compute capability (major), inclusive
    max_cc: Optional[int] = None
    cc_reason: str = ""                         # what the compute capability limit is for
    aligned_rows: bool = False                  # every (b, h, l) row of q, k, v on a 16-byte boundary
    positive_strides: bool = False              # no zero stride on a dim of size > 1 (the copy engine's)
    # Why this build of the extension cannot run it (None: it can); None: any build can.
    build_reason: Optional[Callable[[], Optional[str]]] = field(default=None, compare=False)
    # What every flashmin kernel serves today; kept in the table so that a kernel that does not
    # says so where the others say it does.
    masks: bool = True
    gqa: bool = True
    seqlens_k: bool = True


def _sm90_built() -> bool:
    """Whether the loaded (or loadable) extension holds the sm_90a code of prefill_sm90."""
    if _ext.unavailable_reason() is not None:
        return False
    return bool(_ext.load().built_with_sm90a())


_sm90_cache = {}


def _sm90_build_reason() -> Optional[str]:
    if "built" not in _sm90_cache:
        _sm90_cache["built"] = _sm90_built()
    if not _sm90_cache["built"]:
        return "this build of the extension has no sm_90a code (build it for compute capability 9.0)"
    return None


_HALF = (torch.float16, torch.bfloat16)

KERNEL_SPECS: Dict[str, KernelSpec] = {s.name: s for s in (
    KernelSpec("reference", "PyTorch tiled online softmax (flashmin_nn/reference.py); any device", cuda=False),
    KernelSpec("minimal", "teaching CUDA kernel: fp32 math, one thread per query row, any shape",
               dtypes=_HALF + (torch.float32,), head_dim_max=256),
    KernelSpec("prefill", "fp16/bf16 mma.sync kernel, FlashAttention-2 class; sm80+, head dims multiple of 8 up to 256",
               aliases=("tensor_core",), dtypes=_HALF, head_dim_max=256, head_dim_multiple=8,
               min_cc=8, cc_reason="mma.sync m16n8k16, cp.async", aligned_rows=True),
    KernelSpec("decode", "split-KV tensor-core kernel for 1-16 queries over long KV caches; GQA heads share K/V reads",
               dtypes=_HALF, head_dim_max=128, head_dim_multiple=8, max_query_len=16,
               min_cc=8, cc_reason="mma.sync m16n8k16, cp.async", aligned_rows=True),
    KernelSpec("prefill_sm90", "fp16/bf16 Hopper kernel: TMA copies, wgmma, warp-specialised; sm_90 only, "
               "head dims multiple of 8 up to 256", aliases=("hopper",), dtypes=_HALF, head_dim_max=256,
               head_dim_multiple=8, min_cc=9, max_cc=9, cc_reason="wgmma, TMA, setmaxnreg: sm_90a code",
               aligned_rows=True, positive_strides=True, build_reason=_sm90_build_reason),
)}
KERNEL_ALIASES: Dict[str, str] = {a: s.name for s in KERNEL_SPECS.values() for a in s.aliases}
# The kernels that live in the CUDA extension (csrc/flashmin_api.cpp's kernel_from_name).
CUDA_KERNELS = tuple(name for name, s in KERNEL_SPECS.items() if s.cuda)
KERNEL_NAMES = ("auto",) + tuple(KERNEL_SPECS) + tuple(KERNEL_ALIASES)
# What "auto" tries on CUDA, fastest first. prefill_sm90 runs every prefill cell of the bench
# faster than the sm80 kernel on the H200 (1.0-2.3x, 2026-12-01): on Hopper it goes first.
KERNEL_ORDER = ("decode", "prefill_sm90", "prefill", "minimal")
DECODE_MAX_QUERIES = KERNEL_SPECS["decode"].max_query_len


@dataclass(frozen=True)
class KernelInfo:
    name: str
    available: bool      # can run on this machine's current CUDA device (see list_kernels)
    reason: str          # why not, when unavailable
    description: str
    spec: Optional[KernelSpec] = None   # what it supports (its row of KERNEL_SPECS)


def canonical_name(name: str) -> str:
    """The kernel a name or alias denotes ("tensor_core" -> "prefill"); other names unchanged."""
    return KERNEL_ALIASES.get(name, name)


def _cuda_reason() -> Optional[str]:
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return _ext.unavailable_reason()


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


def _dtype_names(dtypes) -> str:
    names = [str(d).replace("torch.", "") for d in dtypes]
    return " or ".join(names) if len(names) == 2 else ", ".join(names)


def _cc_rejects(spec: KernelSpec, major: int) -> Optional[str]:
    """Why a GPU of compute capability `major`.x cannot run kernel `spec`, or None."""
    if spec.min_cc is not None and spec.max_cc == spec.min_cc and major != spec.min_cc:
        return f"it runs on compute capability {spec.min_cc}.0 only ({spec.cc_reason}); this GPU is sm_{major}x"
    if spec.min_cc is not None and major < spec.min_cc:
        return f"it needs a GPU of compute capability {spec.min_cc}.0 or newer ({spec.cc_reason})"
    if spec.max_cc is not None and major > spec.max_cc:
        return f"it needs a GPU of compute capability {spec.max_cc}.x or older ({spec.cc_reason})"
    return None


def _spec_rejects(spec: KernelSpec, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Optional[str]:
    """Why kernel `spec` cannot run this call (None when it can), from its row of the table."""
    if spec.max_query_len is not None and q.size(2) > spec.max_query_len:   # the cheapest test first
        return f"query length {q.size(2)} > {spec.max_query_len} (it serves short queries over long KV caches)"
    if not spec.cuda:
        return None
    if not q.is_cuda:
        return f"it runs on CUDA tensors; got query.device={q.device}"
    if spec.dtypes and q.dtype not in spec.dtypes:
        return f"query.dtype={q.dtype} (it takes {_dtype_names(spec.dtypes)})"
    D = q.size(-1)
    if spec.head_dim_max is not None and (D % spec.head_dim_multiple != 0 or D > spec.head_dim_max):
        if spec.head_dim_multiple > 1:
            return f"head dim {D} (it takes multiples of {spec.head_dim_multiple} up to {spec.head_dim_max})"
        return f"head dim {D} > {spec.head_dim_max}"
    if spec.min_cc is not None or spec.max_cc is not None:
        why = _cc_rejects(spec, _cc_major(q.device))
        if why is not None:
            return why
    if spec.build_reason is not None:
        why = spec.build_reason()
        if why is not None:
            return why
    if spec.aligned_rows:
        compiling = torch.compiler.is_compiling()
        for t, n in ((q, "query"), (k, "key"), (v, "value")):
            if not _rows_aligned(t, compiling):
                return f"{n} rows are not 16-byte aligned ({n}.stride()={tuple(t.stride())})"
    if spec.positive_strides:
        for t, n in ((q, "query"), (k, "key"), (v, "value")):
            st, sz = t.stride(), t.shape
            if any(st[d] == 0 and sz[d] > 1 for d in range(3)):
                return f"{n} has a zero stride ({n}.stride()={tuple(st)}): the copy engine needs positive strides"
    return None


def support_table() -> str:
    """KERNEL_SPECS as a Markdown table (docs/internals.md holds a copy; tests/test_backends.py
    checks that it is this one)."""
    def cell(spec: KernelSpec, what: str) -> str:
        if what == "dtypes":
            return ", ".join(str(d).replace("torch.", "") for d in spec.dtypes) if spec.dtypes else "any"
        if what == "head dim":
            if spec.head_dim_max is None:
                return "any"
            return (f"multiple of {spec.head_dim_multiple} up to {spec.head_dim_max}" if spec.head_dim_multiple > 1
                    else f"up to {spec.head_dim_max}")
        if what == "query length":
            return f"up to {spec.max_query_len}" if spec.max_query_len is not None else "any"
        if what == "compute capability":
            if not spec.cuda:
                return "any device"
            if spec.min_cc is not None and spec.min_cc == spec.max_cc:
                return f"{spec.min_cc}.x only" + (" (a build with sm_90a code)" if spec.build_reason else "")
            return f"{spec.min_cc}.0 or newer" if spec.min_cc is not None else "any"
        if what == "rows":
            parts = (["16-byte aligned"] if spec.aligned_rows else []) + (["positive strides"] if spec.positive_strides else [])
            return ", ".join(parts) or "any strides"
        if what == "masks, GQA, seqlens_k":
            served = [n for n, ok in (("masks", spec.masks), ("GQA", spec.gqa), ("seqlens_k", spec.seqlens_k)) if ok]
            return "yes" if len(served) == 3 else ("only " + ", ".join(served) if served else "no")
        if what == "aliases":
            return ", ".join(f'"{a}"' for a in spec.aliases)
        raise ValueError(what)
    cols = ("aliases", "dtypes", "head dim", "query length", "compute capability", "rows", "masks, GQA, seqlens_k")
    lines = ["| kernel | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for spec in KERNEL_SPECS.values():
        lines.append(f'| "{spec.name}" | ' + " | ".join(cell(spec, c) for c in cols) + " |")
    return "\n".join(lines)


# The forced kernel. A plain module global rather than a ContextVar: torch.compile (Dynamo) reads
# and guards globals, but cannot trace ContextVar.get. use_kernel restores it on exit.
_current = "auto"


@contextlib.contextmanager
def use_kernel(name: str):
    """Force `name` (a kernel of KERNEL_SPECS or an alias, e.g. "tensor_core" for "prefill") for
    every flashmin call in this context ("auto" restores the default choice)."""
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


class _KernelTable(dict):
    """list_kernels()'s answer: keyed by kernel name; an alias ("tensor_core") finds its kernel too."""

    def __missing__(self, key):
        if key in KERNEL_ALIASES:
            return self[KERNEL_ALIASES[key]]
        raise KeyError(key)

    def __contains__(self, key):
        return dict.__contains__(self, canonical_name(key))

    def get(self, key, default=None):
        return self[key] if key in self else default


def list_kernels() -> Dict[str, KernelInfo]:
    """Every kernel of KERNEL_SPECS, by name (an alias such as "tensor_core" looks up its kernel
    too), with whether it can run on this machine and, if not, why.

    `available` says whether the kernel can run on CUDA tensors of the current CUDA device
    (torch.cuda.current_device()): CUDA is present, the extension is loaded, prebuilt or can be
    built here, the device's compute capability is one the kernel runs on (for "prefill": 8.0 or
    newer), and the build holds the kernel's code (for "prefill_sm90": sm_90a, asked of the
    extension only on a 9.x device, which may load it). "reference" is always available. Limits
    that depend on a call (dtype, head dim, query length, alignment) are not judged here:
    `rejection(name, q, k, v)` says whether a given call is served."""
    cuda_reason = _cuda_reason()
    out = _KernelTable()
    for name, spec in KERNEL_SPECS.items():
        reason = None if not spec.cuda else cuda_reason
        if reason is None and spec.cuda and (spec.min_cc is not None or spec.max_cc is not None):
            reason = _cc_rejects(spec, _cc_major(torch.device("cuda", torch.cuda.current_device())))
        if reason is None and spec.build_reason is not None:
            reason = spec.build_reason()
        out[name] = KernelInfo(name, reason is None, reason or "", spec.description, spec)
    return out


def rejection(name: str, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None) -> Optional[str]:
    """Why kernel `name` (or an alias of it) cannot run this call, or None if it can."""
    return _spec_rejects(KERNEL_SPECS[canonical_name(name)], q, k, v, attn_mask)


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
#                                          else "prefill_sm90" on a 9.x GPU whose build has it
#                                          (known once the walk has asked) with no zero stride,
#                                          else "prefill"
# The limits are read from KERNEL_SPECS once, here; the shape of the test (which kernel needs
# what, in KERNEL_ORDER) is written for the table as it is: tests/test_backends.py checks the
# table still has that shape (a kernel added to KERNEL_ORDER needs a line here).
_F16, _BF16, _F32 = torch.float16, torch.bfloat16, torch.float32
_is_compiling = torch.compiler.is_compiling
_MINIMAL, _PREFILL, _DECODE = KERNEL_SPECS["minimal"], KERNEL_SPECS["prefill"], KERNEL_SPECS["decode"]
_MIN_D = _MINIMAL.head_dim_max
_TC_D, _TC_DMUL, _TC_CC = _PREFILL.head_dim_max, _PREFILL.head_dim_multiple, _PREFILL.min_cc
_DEC_L, _DEC_D = _DECODE.max_query_len, _DECODE.head_dim_max
_SM90_CC = KERNEL_SPECS["prefill_sm90"].min_cc


def _auto_fast(q: Tensor, k: Tensor, v: Tensor) -> Optional[str]:
    """The kernel "auto" picks for CUDA tensors q, k, v, or None where the walk must decide."""
    qs, dt = q.shape, q.dtype
    if len(qs) != 4:
        return None
    D = qs[3]
    if dt is _F32:
        return "minimal" if D <= _MIN_D else None
    if ((dt is not _F16 and dt is not _BF16) or k.dtype is not dt or v.dtype is not dt
            or D % _TC_DMUL or D > _TC_D or _capability.get(q.get_device(), 0) < _TC_CC):
        return None
    # _rows_aligned for q, k and v: with 2-byte elements 16 bytes are 8 elements, for the strides
    # of the row dims and (outside torch.compile) the storage offset.
    qt, kt, vt = q.stride(), k.stride(), v.stride()
    if (qt[0] | qt[1] | qt[2] | kt[0] | kt[1] | kt[2] | vt[0] | vt[1] | vt[2]) & 7:
        return None
    if not _is_compiling() and (q.storage_offset() | k.storage_offset() | v.storage_offset()) & 7:
        return None
    if qs[2] <= _DEC_L and D <= _DEC_D:
        return "decode"
    if _capability.get(q.get_device()) == _SM90_CC:
        built = _sm90_cache.get("built")
        if built is None or not (qt[0] and qt[1] and qt[2] and kt[0] and kt[1] and kt[2] and vt[0] and vt[1] and vt[2]):
            return None    # the walk asks the build once, and judges zero strides (size-1 dims allow them)
        return "prefill_sm90" if built else "prefill"
    return "prefill"


def _auto_walk(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> str:
    """The kernel "auto" picks on CUDA, by definition: the first of KERNEL_ORDER that accepts."""
    for name in KERNEL_ORDER:
        if rejection(name, q, k, v, attn_mask) is None:
            return name
    raise RuntimeError(f"no flashmin CUDA kernel supports query.dtype={q.dtype}, head dim {q.size(-1)}")


# The CUDA kernels of _NESTED nest: every call "decode" serves, "prefill" serves, and every call
# "prefill" serves, "minimal" serves (tests/test_backends.py checks it of the table). So when
# "auto" picks kernel a, a forced kernel of _NESTED serves the call iff it is a or comes after a.
# "prefill_sm90" serves a subset of what "prefill" serves (Hopper only, positive strides), so
# auto's choosing it ranks like "prefill", and forcing it is always checked.
_NESTED = ("decode", "prefill", "minimal")
_ORDER_RANK = {name: i for i, name in enumerate(_NESTED)}
_ORDER_RANK_OF_CHOICE = dict(_ORDER_RANK, prefill_sm90=_ORDER_RANK["prefill"])


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
    """The concrete kernel for this call (by its name, not an alias): the forced one (checked) or
    the "auto" choice."""
    forced = _current
    if forced == "auto":
        return choose_kernel(q, k, v, attn_mask)
    name = KERNEL_ALIASES.get(forced, forced)
    rank = _ORDER_RANK.get(name)
    if rank is not None and q.is_cuda:
        fast = _auto_fast(q, k, v)
        if fast is not None and _ORDER_RANK_OF_CHOICE[fast] <= rank:
            return name
    elif name == "prefill_sm90" and q.is_cuda and _auto_fast(q, k, v) == name:
        return name                 # what auto would run: served, without the walk
    why = rejection(name, q, k, v, attn_mask)
    if why is not None:
        raise RuntimeError(f"flashmin kernel {forced!r} (forced with use_kernel) cannot run this call: {why}")
    return name
