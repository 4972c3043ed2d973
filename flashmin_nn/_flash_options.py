"""flash_attn 2.8's options, read the way flash_attn reads them: the checks shared by the
FlashAttention-2 functions (flash_attn_interface.py) and attention() (functional.py).

Every parameter is accepted; a value flashmin does not implement yet raises NotImplementedError
naming it, and a value that means the same as the default (a window as wide as the keys,
softcap <= 0, ...) is read as the default.
"""
import math
import numbers

import torch
from torch import Tensor

from ._checks import describe, integer, not_a_bool
from .ops import NO_EXTRAS

NO_WINDOW = (-1, -1)

def check_dropout(dropout_p):
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real):
        raise TypeError(f"dropout_p={describe(dropout_p)} must be a float; got {type(dropout_p).__name__}")
    if dropout_p != 0:
        raise NotImplementedError(f"dropout_p={dropout_p}: flashmin is inference-only and has no dropout; "
                                  "pass dropout_p=0.0 (flash_attn's setting for evaluation)")


def flash_options(causal: bool, window_size, softcap, alibi_slopes, seqlen_k, q: Tensor, batch: int, heads: int):
    """(causal, extras) for flash_attn 2.8's window_size, softcap and alibi_slopes: extras is the op's
    (window_left, window_right, softcap, alibi_slopes, sinks), or NO_EXTRAS when the options come down
    to full or causal attention. flash_attn's reading: a side of the window as wide as the keys
    (>= seqlen_k) has no limit, any negative side has none, causal sets the right side to 0, and
    (no limit, 0) is causal; the free side of a one-sided window is seqlen_k, as flash_attn's
    kernel runs it; softcap <= 0 is off. The window is relative to the bottom-right
    diagonal (query i's is key i + Sk - Sq), as causal is. CPU tensors run them all; on CUDA they raise
    NotImplementedError naming the option (no CUDA kernel implements them yet)."""
    if isinstance(softcap, bool) or not isinstance(softcap, (numbers.Real, torch.SymFloat)):
        raise TypeError(f"softcap={describe(softcap)} must be a float (0.0: no softcapping); "
                        f"got {type(softcap).__name__}")
    if softcap != softcap or softcap == math.inf:
        raise ValueError(f"softcap={softcap} must be a finite number (0.0: no softcapping)")
    softcap = float(softcap) if softcap > 0 else 0.0
    try:
        left, right = window_size
    except (TypeError, ValueError):
        raise TypeError(f"window_size={describe(window_size)} must be a pair (left, right) of ints; "
                        "-1 means no limit") from None
    left, right = integer(left, "window_size[0]"), integer(right, "window_size[1]")
    left = -1 if left < 0 or left >= seqlen_k else left
    right = -1 if right < 0 or right >= seqlen_k else right
    if causal:
        right = 0
    if left < 0 and right == 0:
        causal, right = True, -1
    elif left >= 0 and right < 0 and seqlen_k != math.inf:
        # flash_attn's kernel runs a one-sided window with its free side at seqlen_k: no limit,
        # except where a row's diagonal lies before key 0 (more queries than keys), whose right
        # side then ends at key d_i + seqlen_k. (The free left side of (-1, right) at seqlen_k
        # never binds: d_i - seqlen_k < 0.)
        right = int(seqlen_k)
    if alibi_slopes is not None:
        alibi_slopes = check_alibi(alibi_slopes, q, batch, heads)
    if left < 0 and right < 0 and softcap == 0.0 and alibi_slopes is None:
        return causal, NO_EXTRAS
    return causal, (left, right, softcap, alibi_slopes, None)


def check_alibi(alibi_slopes, q: Tensor, batch: int, heads: int) -> Tensor:
    if not isinstance(alibi_slopes, Tensor):
        raise TypeError(f"alibi_slopes must be a float32 tensor of shape (Hq,) or (B, Hq); got "
                        f"{type(alibi_slopes).__name__}")
    if alibi_slopes.dtype != torch.float32 or tuple(alibi_slopes.shape) not in ((heads,), (batch, heads)):
        raise ValueError(f"alibi_slopes must be a float32 tensor of shape (Hq,)=({heads},) or (B, Hq)=({batch}, "
                         f"{heads}); got dtype={alibi_slopes.dtype}, shape={tuple(alibi_slopes.shape)}")
    if alibi_slopes.device != q.device:
        raise ValueError(f"alibi_slopes.device={alibi_slopes.device} must equal q.device={q.device}")
    return alibi_slopes


def check_sinks(sinks, q: Tensor, heads: int) -> Tensor:
    if not isinstance(sinks, Tensor):
        raise TypeError(f"sinks must be a float tensor of shape (Hq,); got {type(sinks).__name__}")
    if not sinks.is_floating_point() or tuple(sinks.shape) != (heads,):
        raise ValueError(f"sinks must be a float tensor of shape (Hq,)=({heads},); got dtype={sinks.dtype}, "
                         f"shape={tuple(sinks.shape)}")
    if sinks.device != q.device:
        raise ValueError(f"sinks.device={sinks.device} must equal q.device={q.device}")
    return sinks


def check_kvcache_options(rotary_cos, rotary_sin, cache_leftpad, num_splits, rotary_interleaved):
    if rotary_cos is not None or rotary_sin is not None:
        raise NotImplementedError(f"rotary_cos={describe(rotary_cos)}, rotary_sin={describe(rotary_sin)}: rotary "
                                  "embedding inside the call is not implemented in flashmin yet; rotate q and the new "
                                  "k before the call")
    if cache_leftpad is not None:
        raise NotImplementedError(f"cache_leftpad={describe(cache_leftpad)}: caches that start past position 0 are "
                                  "not implemented in flashmin yet")
    num_splits = integer(num_splits, "num_splits")
    if num_splits != 0:
        raise NotImplementedError(f"num_splits={num_splits}: flashmin's decode plan chooses the number of splits "
                                  "itself; only num_splits=0 (flash_attn's own heuristic) is implemented")
    if rotary_interleaved is not True and rotary_interleaved is not False:
        not_a_bool("rotary_interleaved", rotary_interleaved)


def check_cu_seqlens(cu_q: Tensor, cu_k: Tensor, total_q: int, total_k: int, Lmax: int, Smax: int):
    """cu_seqlens start at 0, never decrease, end within the totals; max_seqlen covers every sequence.
    One read-back to the host for both."""
    vals = torch.cat([cu_q, cu_k]).tolist()
    n = len(vals) // 2
    for name, cu, total, max_len, max_name in (("cu_seqlens_q", vals[:n], total_q, Lmax, "max_seqlen_q"),
                                               ("cu_seqlens_k", vals[n:], total_k, Smax, "max_seqlen_k")):
        steps = [b - a for a, b in zip(cu, cu[1:])]
        if cu[0] != 0 or min(steps, default=0) < 0:
            raise ValueError(f"{name} must start at 0 and never decrease; got values from {min(cu)} to {max(cu)}")
        if cu[-1] > total:
            raise ValueError(f"{name}[-1]={cu[-1]} is past the {total} tokens packed in "
                             f"{'q' if name.endswith('q') else 'k'}.size(0)")
        if max(steps, default=0) > max_len:
            raise ValueError(f"{max_name}={max_len} is less than the longest sequence in {name} "
                             f"({max(steps)} tokens)")


def host_seqlens(cache_seqlens, B: int, S: int, device) -> Tensor:
    """cache_seqlens as an int64 CPU tensor (B,) for the gather of a paged or indexed cache (None: S)."""
    if cache_seqlens is None:
        return torch.full((B,), S, dtype=torch.int64)
    if isinstance(cache_seqlens, Tensor):
        if cache_seqlens.dtype not in (torch.int32, torch.int64) or cache_seqlens.shape != (B,):
            raise ValueError(f"cache_seqlens must be an int32/int64 tensor of shape (B,)=({B},); got "
                             f"dtype={cache_seqlens.dtype}, shape={tuple(cache_seqlens.shape)}")
        if cache_seqlens.device != device:
            raise ValueError(f"cache_seqlens.device={cache_seqlens.device} must equal q.device={device}")
        return cache_seqlens.to(torch.int64)
    if isinstance(cache_seqlens, bool) or not isinstance(cache_seqlens, numbers.Integral):
        raise TypeError(f"cache_seqlens={describe(cache_seqlens)} must be an int or an int32/int64 tensor of "
                        f"shape (B,); got {type(cache_seqlens).__name__}")
    return torch.full((B,), int(cache_seqlens), dtype=torch.int64)
