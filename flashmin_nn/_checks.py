"""Argument checks for the public API, run before anything is dispatched.

Every error names the tensor and the value it got (`key.size(-1)=96 must equal query.size(-1)=64`),
in the caller's own layout: (B, H, L, D) for the SDPA-style functions, (B, S, H, D) for the
FlashAttention-style ones. Shapes and values raise ValueError, dtypes TypeError.
"""
import warnings
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
CPU_DTYPES = CUDA_DTYPES + (torch.float64,)
MAX_CUDA_HEAD_DIM = 256

_warned_copy = False


def _last_dim_contiguous(t: Tensor, name: str) -> Tensor:
    """The kernels need stride(-1) == 1; any other stride is fine. Copy (once warned) otherwise."""
    global _warned_copy
    if t.stride(-1) == 1 or t.size(-1) <= 1:
        return t
    if not _warned_copy:
        warnings.warn(f"flashmin: {name}.stride(-1)={t.stride(-1)} is not 1, so {name} is copied to a "
                      "contiguous tensor on every call; pass tensors whose last dim is contiguous", stacklevel=4)
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
              and ks[0] == qs[0] and ks[3] == qs[3] and ks[hd] > 0 and qs[hd] % ks[hd] == 0
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
    if k.size(0) != q.size(0):
        raise ValueError(f"{kn}.size(0)={k.size(0)} must equal {qn}.size(0)={q.size(0)} (batch)")
    if k.size(-1) != q.size(-1):
        raise ValueError(f"{kn}.size(-1)={k.size(-1)} must equal {qn}.size(-1)={q.size(-1)} (head dim)")
    if v.shape != k.shape:
        raise ValueError(f"{vn}.shape={tuple(v.shape)} must equal {kn}.shape={tuple(k.shape)}")
    hq, hkv = q.size(hd), k.size(hd)
    if hkv == 0 or hq % hkv != 0:
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
    try:
        ok = attn_mask.dim() <= 4 and torch.broadcast_shapes(attn_mask.shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"attn_mask.shape={tuple(attn_mask.shape)} does not broadcast to (B, H, L, S)={target}")
    if q.is_cuda and attn_mask.dtype == torch.float64:
        attn_mask = attn_mask.to(torch.float32)                 # the kernels read fp32/fp16/bf16 masks
    return attn_mask.expand(target)
