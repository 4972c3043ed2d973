"""Argument checks for the public API, run before anything is dispatched.

Every error names the tensor and the value it got (`key.size(-1)=96 must equal query.size(-1)=64`),
in the caller's own layout: (B, H, L, D) for the SDPA-style functions, (B, S, H, D) for the
FlashAttention-style ones. Shapes and values raise ValueError, dtypes TypeError.
"""
import math
import numbers
import os
import sys
import warnings
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
CPU_DTYPES = CUDA_DTYPES + (torch.float64,)
MAX_CUDA_HEAD_DIM = 256

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep    # nn.Module's call machinery

_warned_copy = False


def warn_at_caller(message: str, skip: Tuple[str, ...] = (PACKAGE_DIR, TORCH_DIR), category=UserWarning):
    """warnings.warn, attributed to the first frame whose file is not under one of the `skip`
    directories (flashmin's and torch's by default, so a call through flashmin's nn.Module counts
    too): the caller's line, however deep the entry point is. Runs only when a warning is issued."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def describe(value) -> str:
    """A value for an error message: a tensor by shape and dtype (never its contents), anything else
    by repr when that is short, else by type."""
    if isinstance(value, Tensor):
        return f"<tensor of shape {tuple(value.shape)}, dtype {value.dtype}>"
    text = repr(value)
    return text if len(text) <= 60 else f"<{type(value).__name__}>"


def not_a_bool(name: str, value):
    """Raise the error for a flag that is not a Python bool (as torch's SDPA, flashmin takes no 1, "yes", None)."""
    raise TypeError(f"{name}={describe(value)} must be a bool (True or False); got {type(value).__name__}")


def finite_scale(scale, name: str = "scale") -> float:
    """A softmax scale as a float: a finite real number (a NaN or infinite scale would give NaN everywhere)."""
    if type(scale) is not float:
        if isinstance(scale, (bool, str)) or not isinstance(scale, (numbers.Real, torch.SymFloat, torch.SymInt)):
            raise TypeError(f"{name} must be a real number or None; got {describe(scale)} ({type(scale).__name__})")
        scale = float(scale)
    if not -math.inf < scale < math.inf:
        raise ValueError(f"{name}={scale} must be a finite number (or None for 1 / sqrt(head dim))")
    return scale


def integer(value, name: str):
    """An int argument: int, a numpy integer or (under torch.compile) a SymInt; never a bool or a float."""
    if type(value) is int or isinstance(value, torch.SymInt):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        what = "a bool" if isinstance(value, bool) else type(value).__name__
        raise TypeError(f"{name}={describe(value)} must be an int; got {what}")
    return int(value)


def _last_dim_contiguous(t: Tensor, name: str) -> Tensor:
    """The kernels need stride(-1) == 1; any other stride is fine. Copy (once warned) otherwise."""
    global _warned_copy
    if t.stride(-1) == 1 or t.size(-1) <= 1:
        return t
    if not _warned_copy:
        warn_at_caller(f"flashmin: {name}.stride(-1)={t.stride(-1)} is not 1, so {name} is copied to a "
                       "contiguous tensor on every call; pass tensors whose last dim is contiguous")
        _warned_copy = True
    return t.contiguous()


def check_qkv(q: Tensor, k: Tensor, v: Tensor, names: Sequence[str] = ("query", "key", "value"),
              layout: str = "bhld") -> Tuple[Tensor, Tensor, Tensor]:
    """Validate q, k, v; return them (last dim made contiguous if it was not).

    layout "bhld": (B, H, L, D) tensors; "blhd": (B, L, H, D). GQA by head counts is allowed here
    (Hq a multiple of Hkv); the SDPA wrapper adds torch's `enable_gqa` rule on top.
    The common, valid call is accepted by one expression (this runs on every decode step);
    anything it does not accept goes through the detailed checks, which name what is wrong.
    """
    hd = 1 if layout == "bhld" else 2
    # The expression reads each attribute once, and the cheap ones (host cost, measured):
    # q.device.type ~400 ns (it builds a device object and a string), q.size(i)/q.stride(i) ~230 ns
    # each against ~130 ns for the whole q.shape/q.stride() tuple, q.is_cuda/is_cpu/get_device()/
    # dtype ~60 ns. Same device: all CUDA with one get_device() index, or all CPU.
    try:
        qs, ks, dt = q.shape, k.shape, q.dtype
        ok = (len(qs) == 4 and len(ks) == 4 and v.shape == ks and k.dtype == dt and v.dtype == dt
              and ks[0] == qs[0] and ks[3] == qs[3] and qs[3] > 0 and ks[hd] > 0 and qs[hd] % ks[hd] == 0
              and q.stride()[3] == 1 and k.stride()[3] == 1 and v.stride()[3] == 1
              and ((dt in CUDA_DTYPES and qs[3] <= MAX_CUDA_HEAD_DIM and k.is_cuda and v.is_cuda
                    and k.get_device() == q.get_device() == v.get_device()) if q.is_cuda
                   else (dt in CPU_DTYPES and q.is_cpu and k.is_cpu and v.is_cpu)))
    except (AttributeError, TypeError):
        ok = False
    if ok:
        return q, k, v
    return _check_qkv_detailed(q, k, v, names, layout)


def _check_qkv_detailed(q, k, v, names, layout):
    qn, kn, vn = names
    hd = 1 if layout == "bhld" else 2                          # index of the heads dim
    shape = "(B, H, L, E)" if layout == "bhld" else "(B, S, H, D)"
    for t, n in ((q, qn), (k, kn), (v, vn)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{n} must be a torch.Tensor; got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{n}.dim()={t.dim()} must be 4: {shape}; got {n}.shape={tuple(t.shape)}")
    if not q.is_floating_point():
        raise TypeError(f"{qn}.dtype={q.dtype} must be a floating type (float16, bfloat16, float32)")
    for t, n in ((k, kn), (v, vn)):
        if t.dtype != q.dtype:
            raise TypeError(f"{n}.dtype={t.dtype} must equal {qn}.dtype={q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{n}.device={t.device} must equal {qn}.device={q.device}")
    if q.is_cuda:
        if q.dtype not in CUDA_DTYPES:
            raise TypeError(f"{qn}.dtype={q.dtype} is not supported on CUDA (float16, bfloat16, float32); "
                            "float64 runs on CPU tensors only")
        if q.size(-1) > MAX_CUDA_HEAD_DIM:
            raise ValueError(f"head dim {qn}.size(-1)={q.size(-1)} is not supported by the CUDA kernels "
                             f"(at most {MAX_CUDA_HEAD_DIM})")
    elif q.device.type != "cpu":
        raise ValueError(f"{qn}.device={q.device}: flashmin runs on CUDA and CPU tensors only")
    elif q.dtype not in CPU_DTYPES:
        raise TypeError(f"{qn}.dtype={q.dtype} is not supported on CPU tensors (float16, bfloat16, float32, float64)")
    if k.size(0) != q.size(0):
        raise ValueError(f"{kn}.size(0)={k.size(0)} must equal {qn}.size(0)={q.size(0)} (batch)")
    if k.size(-1) != q.size(-1):
        raise ValueError(f"{kn}.size(-1)={k.size(-1)} must equal {qn}.size(-1)={q.size(-1)} (head dim)")
    if q.size(-1) == 0:
        raise ValueError(f"head dim {qn}.size(-1)=0 must be at least 1 (got {qn}.shape={tuple(q.shape)})")
    if v.shape != k.shape:
        raise ValueError(f"{vn}.shape={tuple(v.shape)} must equal {kn}.shape={tuple(k.shape)}")
    hq, hkv = q.size(hd), k.size(hd)
    if hkv == 0:
        raise ValueError(f"{kn}.size({hd})=0: {kn} and {vn} need at least one head (got {kn}.shape={tuple(k.shape)})")
    if hq % hkv != 0:
        raise ValueError(f"{qn}.size({hd})={hq} query heads must be a multiple of {kn}.size({hd})={hkv} kv heads")
    return (_last_dim_contiguous(q, qn), _last_dim_contiguous(k, kn), _last_dim_contiguous(v, vn))


def expand_mask(attn_mask, B: int, H: int, L: int, S: int, q: Tensor) -> Optional[Tensor]:
    """Validate attn_mask and return it expanded to (B, H, L, S): a view, nothing materialised."""
    if attn_mask is None:
        return None
    if not isinstance(attn_mask, Tensor):
        raise TypeError(f"attn_mask must be a torch.Tensor or None; got {type(attn_mask).__name__}")
    if attn_mask.device != q.device:
        raise ValueError(f"attn_mask.device={attn_mask.device} must equal query.device={q.device}")
    if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
        raise TypeError(f"attn_mask.dtype={attn_mask.dtype} must be bool (True = attend) or a float type (added to the scores)")
    target = (B, H, L, S)
    # Broadcasts to target: at most 4 dims, each (from the right) 1 or the target's. Written out:
    # torch.broadcast_shapes took about 15 us a call, most of a masked call's host time (a decode
    # step of a padded batch calls this once a layer).
    shape = attn_mask.shape
    ok = len(shape) <= 4 and all(m == 1 or m == t for m, t in zip(reversed(shape), (S, L, H, B)))
    if not ok:
        raise ValueError(f"attn_mask.shape={tuple(attn_mask.shape)} does not broadcast to (B, H, L, S)={target}")
    if q.is_cuda and attn_mask.dtype == torch.float64:
        attn_mask = attn_mask.to(torch.float32)                 # the kernels read fp32/fp16/bf16 masks
    return attn_mask.expand(target)


def check_indexed_cache(q, k_cache, v_cache, k, block_table, cache_batch_idx, read_values=True):
    """The shapes of a paged cache (block_table) or an indexed one (cache_batch_idx), before any gather.

    Returns (B, N, P, M, n_new): q's batch, the cache's dim 0 (pages, or cache rows), the page size
    (block_table) or cache length, block_table.size(1) (0 without one) and the number of new keys.
    The row lengths and the indices they reach are checked by the caller, which knows the lengths.
    read_values=False skips the checks of cache_batch_idx's values (a read-back to the host).
    """
    for t, n in ((q, "q"), (k_cache, "k_cache"), (v_cache, "v_cache")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{n} must be a torch.Tensor; got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{n}.dim()={t.dim()} must be 4; got {n}.shape={tuple(t.shape)}")
    layout = ("(num_blocks, page_block_size, Hkv, D) with block_table" if block_table is not None
              else "(B_cache, S_max, Hkv, D) with cache_batch_idx")
    if v_cache.shape != k_cache.shape:
        raise ValueError(f"v_cache.shape={tuple(v_cache.shape)} must equal k_cache.shape={tuple(k_cache.shape)}")
    for t, n in ((k_cache, "k_cache"), (v_cache, "v_cache")):
        if t.dtype != q.dtype:
            raise TypeError(f"{n}.dtype={t.dtype} must equal q.dtype={q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{n}.device={t.device} must equal q.device={q.device}")
    B, N, P = q.size(0), k_cache.size(0), k_cache.size(1)
    n_new = k.size(1) if isinstance(k, Tensor) and k.dim() == 4 else 0
    if block_table is not None:
        if not isinstance(block_table, Tensor):
            raise TypeError(f"block_table must be a torch.Tensor (B, max_blocks_per_seq) int32; got "
                            f"{type(block_table).__name__}")
        if block_table.dtype != torch.int32:
            raise TypeError(f"block_table.dtype={block_table.dtype} must be torch.int32 (as in flash_attn)")
        if block_table.dim() != 2 or block_table.size(0) != B:
            raise ValueError(f"block_table.shape={tuple(block_table.shape)} must be (B, max_blocks_per_seq) with "
                             f"B=q.size(0)={B}")
        if block_table.device != q.device:
            raise ValueError(f"block_table.device={block_table.device} must equal q.device={q.device}")
        if P < 1:
            raise ValueError(f"k_cache.shape={tuple(k_cache.shape)}: page_block_size=k_cache.size(1)={P} must be at "
                             f"least 1; k_cache is {layout}")
        return B, N, P, block_table.size(1), n_new
    idx = cache_batch_idx
    if not isinstance(idx, Tensor):
        raise TypeError(f"cache_batch_idx must be a torch.Tensor (B,) int32/int64; got {type(idx).__name__}")
    if idx.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"cache_batch_idx.dtype={idx.dtype} must be torch.int32 or torch.int64")
    if idx.shape != (B,):
        raise ValueError(f"cache_batch_idx.shape={tuple(idx.shape)} must be (B,)=({B},), one cache row per row of q")
    if idx.device != q.device:
        raise ValueError(f"cache_batch_idx.device={idx.device} must equal q.device={q.device}")
    if B > 0 and read_values:
        lo, hi = torch.stack(torch.aminmax(idx)).tolist()
        if lo < 0 or hi >= N:
            raise ValueError(f"cache_batch_idx must lie in [0, {N}) (k_cache.size(0)={N} cache rows; k_cache is "
                             f"{layout}); got values from {lo} to {hi}")
        if k is not None and idx.unique().numel() != B:
            raise ValueError(f"cache_batch_idx={describe(idx)} repeats a cache row, and new keys k/v are given: "
                             "two rows would append into the same cache row; repeated indices are accepted "
                             "without new keys only")
    return B, N, P, 0, n_new
