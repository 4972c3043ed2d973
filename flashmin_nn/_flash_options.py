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


def window_pair(window_size):
    """window_size as two ints (left, right), any negative side as -1 (no limit)."""
    try:
        left, right = window_size
    except (TypeError, ValueError):
        raise TypeError(f"window_size={describe(window_size)} must be a pair (left, right) of ints; "
                        "-1 means no limit") from None
    left, right = integer(left, "window_size[0]"), integer(right, "window_size[1]")
    return max(left, -1), max(right, -1)


def flash_options(causal: bool, window_size, softcap, alibi_slopes, seqlen_k, q: Tensor, batch: int, heads: int):
    """(causal, extras) for flash_attn 2.8's window_size, softcap and alibi_slopes: extras is the op's
    (window_left, window_right, softcap, alibi_slopes, sinks), or NO_EXTRAS when the options come down
    to full or causal attention. flash_attn's reading: a side of the window as wide as the keys
    (>= seqlen_k) has no limit, any negative side has none, causal sets the right side to 0, and
    (no limit, 0) is causal; the free side of a one-sided window is seqlen_k, as flash_attn's
    kernel runs it; softcap <= 0 is off. The window is relative to the bottom-right
    diagonal (query i's is key i + Sk - Sq), as causal is. Every kernel runs them."""
    if isinstance(softcap, bool) or not isinstance(softcap, (numbers.Real, torch.SymFloat)):
        raise TypeError(f"softcap={describe(softcap)} must be a float (0.0: no softcapping); "
                        f"got {type(softcap).__name__}")
    if softcap != softcap or softcap == math.inf:
        raise ValueError(f"softcap={softcap} must be a finite number (0.0: no softcapping)")
    softcap = float(softcap) if softcap > 0 else 0.0
    left, right = window_pair(window_size)
    left = -1 if left >= seqlen_k else left
    right = -1 if right >= seqlen_k else right
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
    return alibi_slopes.contiguous()


def check_sinks(sinks, q: Tensor, heads: int) -> Tensor:
    if not isinstance(sinks, Tensor):
        raise TypeError(f"sinks must be a float tensor of shape (Hq,); got {type(sinks).__name__}")
    if not sinks.is_floating_point() or tuple(sinks.shape) != (heads,):
        raise ValueError(f"sinks must be a float tensor of shape (Hq,)=({heads},); got dtype={sinks.dtype}, "
                         f"shape={tuple(sinks.shape)}")
    if sinks.device != q.device:
        raise ValueError(f"sinks.device={sinks.device} must equal q.device={q.device}")
    return sinks.float().contiguous()     # the kernels read fp32 (a model's bf16 parameter is converted)


def check_kvcache_options(num_splits, rotary_interleaved):
    num_splits = integer(num_splits, "num_splits")
    if num_splits != 0:
        raise NotImplementedError(f"num_splits={num_splits}: flashmin's decode plan chooses the number of splits "
                                  "itself; only num_splits=0 (flash_attn's own heuristic) is implemented")
    if rotary_interleaved is not True and rotary_interleaved is not False:
        not_a_bool("rotary_interleaved", rotary_interleaved)


def rotate(q: Tensor, k, k_cache: Tensor, block_table, cos, sin, cache_seqlens, interleaved: bool, causal: bool,
           window_size):
    """flash_attn_with_kvcache's rotary embedding: q and the new keys k (B, L, H, D) rotated at their
    positions, as flash_attn 2.8 does it. cos, sin: (seqlen_ro, rotary_dim / 2), q's dtype; the first
    rotary_dim columns turn, as pairs (2c, 2c + 1) when interleaved (GPT-J) or as halves (c,
    c + rotary_dim / 2) otherwise (GPT-NeoX). New key j of row b sits at position cache_seqlens[b] + j;
    query i at cache_seqlens[b] + i with causal or a local window, else every query at
    cache_seqlens[b]. Done with PyTorch ops before the attention (new tensors; the caller's q and k
    are not modified). Returns (q, k)."""
    for t, n in ((cos, "rotary_cos"), (sin, "rotary_sin")):
        if not isinstance(t, Tensor):
            raise TypeError(f"rotary_cos and rotary_sin must be given together as tensors; got {n}="
                            f"{describe(t)}")
    if not isinstance(q, Tensor) or q.dim() != 4:
        raise ValueError(f"q must be a (B, Lq, Hq, D) tensor; got q={describe(q)}")
    B, Lq, _, D = q.shape
    if cos.dim() != 2 or sin.shape != cos.shape or 2 * cos.shape[1] > D or cos.shape[1] == 0:
        raise ValueError(f"rotary_cos and rotary_sin must both be (seqlen_ro, rotary_dim / 2) with rotary_dim <= "
                         f"D={D}; got rotary_cos.shape={tuple(cos.shape)}, rotary_sin.shape={tuple(sin.shape)}")
    if cos.dtype != q.dtype or sin.dtype != q.dtype or cos.device != q.device or sin.device != q.device:
        raise ValueError(f"rotary_cos and rotary_sin must have q's dtype and device ({q.dtype}, {q.device}); got "
                         f"{cos.dtype}/{sin.dtype} on {cos.device}/{sin.device}")
    if cache_seqlens is None:
        raise ValueError("rotary_cos/rotary_sin need cache_seqlens: the new keys' and queries' positions start there")
    S = k_cache.shape[1] * (block_table.shape[1] if isinstance(block_table, Tensor) and block_table.dim() == 2 else 1)
    if cos.shape[0] < S:
        raise ValueError(f"rotary_cos.shape[0]={cos.shape[0]} positions must cover the cache's {S} keys (flash_attn "
                         "requires seqlen_ro >= seqlen_k)")
    if isinstance(cache_seqlens, Tensor):
        start = cache_seqlens.to(device=q.device, dtype=torch.int64).reshape(-1, 1)
    else:
        start = torch.full((B, 1), int(integer(cache_seqlens, "cache_seqlens")), dtype=torch.int64, device=q.device)
    local = not causal and any(0 <= w < S for w in window_pair(window_size))
    steps = torch.arange(Lq, device=q.device) if causal or local else torch.zeros(Lq, dtype=torch.int64, device=q.device)
    q = _rotate(q, cos, sin, (start + steps).clamp(0, cos.shape[0] - 1), interleaved)
    if k is not None and isinstance(k, Tensor) and k.dim() == 4:
        k = _rotate(k, cos, sin, (start + torch.arange(k.shape[1], device=k.device)).clamp(0, cos.shape[0] - 1),
                    interleaved)
    return q, k


def _rotate(x: Tensor, cos: Tensor, sin: Tensor, pos: Tensor, interleaved: bool) -> Tensor:
    """x (B, L, H, D) with its first 2 cos.shape[1] columns rotated by the angles of positions pos (B, L)."""
    half = cos.shape[1]
    c = cos[pos].unsqueeze(2).float()                  # (B, L, 1, half)
    s = sin[pos].unsqueeze(2).float()
    xr = x[..., :2 * half].float()
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
        turned = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)
    else:
        x1, x2 = xr[..., :half], xr[..., half:]
        turned = torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)
    return torch.cat((turned.to(x.dtype), x[..., 2 * half:]), dim=-1)


def check_leftpad(cache_leftpad, q, cache_seqlens, check_lengths: bool) -> None:
    """flash_attn's cache_leftpad (B,) int32, checked before the cache is written; with check_lengths,
    0 <= cache_leftpad <= cache_seqlens (one read-back for a tensor; not while torch.compile traces
    or a CUDA graph is captured)."""
    B = q.shape[0] if isinstance(q, Tensor) and q.dim() == 4 else None
    if not isinstance(cache_leftpad, Tensor) or cache_leftpad.dtype != torch.int32 or tuple(cache_leftpad.shape) != (B,):
        raise ValueError(f"cache_leftpad must be an int32 tensor of shape (B,)=({B},); got {describe(cache_leftpad)}")
    if cache_leftpad.device != q.device:
        raise ValueError(f"cache_leftpad.device={cache_leftpad.device} must equal q.device={q.device}")
    if check_lengths and B and not torch.compiler.is_compiling() and not (q.is_cuda and torch.cuda.is_current_stream_capturing()):
        start = cache_leftpad.to(torch.int64)
        if cache_seqlens is None:
            end = None
        elif isinstance(cache_seqlens, Tensor):
            end = cache_seqlens.to(torch.int64).reshape(-1)
        else:
            end = torch.full((B,), int(cache_seqlens), dtype=torch.int64, device=start.device)
        bad = (start < 0) if end is None or end.shape != start.shape else (start < 0) | (start > end)
        if bad.any():
            b = int(bad.nonzero()[0, 0])
            raise ValueError(f"cache_leftpad[{b}]={int(start[b])} must lie in [0, cache_seqlens[{b}]"
                             + (f"={int(end[b])}]" if end is not None and end.shape == start.shape else "]"))


def leftpad_shift(cache_leftpad: Tensor, kt: Tensor, vt: Tensor, lens, S: int):
    """Row b's cache starting at key cache_leftpad[b] (checked by check_leftpad): as flash_attn does (it
    offsets each row's K/V pointer), the row is seen from there: kt, vt (B, Hkv, S, D) gathered shifted
    left by each row's start into new tensors, and the row's length shortened by it; the causal
    diagonal, the window and ALiBi keep their places relative to the row's last key. Returns
    (kt, vt, lens)."""
    B = kt.shape[0]
    start = cache_leftpad.to(torch.int64)
    if lens is None:
        lens = torch.full((B,), S, dtype=torch.int32, device=kt.device)
    idx = (torch.arange(S, device=kt.device).view(1, S) + start.view(B, 1)).clamp(max=max(S - 1, 0))   # (B, S)
    gather = idx.view(B, 1, S, 1).expand(B, kt.shape[1], S, kt.shape[3])
    return kt.gather(2, gather), vt.gather(2, gather), (lens.to(torch.int64) - start).to(torch.int32).contiguous()


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


def check_seqlens_tensor(cache_seqlens: Tensor, B: int, device) -> Tensor:
    """cache_seqlens as a tensor must be int32/int64 (B,) on q's device; returned as given."""
    if cache_seqlens.dtype not in (torch.int32, torch.int64) or cache_seqlens.shape != (B,):
        raise ValueError(f"cache_seqlens must be an int32/int64 tensor of shape (B,)=({B},); got "
                         f"dtype={cache_seqlens.dtype}, shape={tuple(cache_seqlens.shape)}")
    if cache_seqlens.device != device:
        raise ValueError(f"cache_seqlens.device={cache_seqlens.device} must equal q.device={device}")
    return cache_seqlens


def host_seqlens(cache_seqlens, B: int, S: int, device) -> Tensor:
    """cache_seqlens as an int64 CPU tensor (B,) for the gather of a paged or indexed cache (None: S)."""
    if cache_seqlens is None:
        return torch.full((B,), S, dtype=torch.int64)
    if isinstance(cache_seqlens, Tensor):
        return check_seqlens_tensor(cache_seqlens, B, device).to(torch.int64)
    if isinstance(cache_seqlens, bool) or not isinstance(cache_seqlens, numbers.Integral):
        raise TypeError(f"cache_seqlens={describe(cache_seqlens)} must be an int or an int32/int64 tensor of "
                        f"shape (B,); got {type(cache_seqlens).__name__}")
    return torch.full((B,), int(cache_seqlens), dtype=torch.int64)
