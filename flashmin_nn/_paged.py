"""flash_attn_with_kvcache over a paged cache (block_table) that the decode kernel reads in place."""
import math

import torch
from torch import Tensor

from . import backends
from ._checks import check_indexed_cache, finite_scale, integer
from ._flash_options import NO_WINDOW as _NO_WINDOW, flash_options
from .ops import NO_EXTRAS, paged_decode


def kvcache_paged(q, k_cache, v_cache, k, v, cache_seqlens, block_table, softmax_scale, causal, window_size, softcap,
                  alibi_slopes, check_lengths):
    """flash_attn_with_kvcache with block_table where the decode kernel reads the pages in place: CUDA,
    up to 16 queries, a power-of-two page of 16 keys or more, and "auto" or "decode" as the kernel.
    The new keys are written into their pages first (device ops, no host synchronisation). Returns
    (out (B, Lq, Hq, D), lse (B, Hq, Lq)), or None for any other call (the gathering path serves it)."""
    if not (isinstance(q, Tensor) and q.is_cuda and q.dim() == 4 and q.size(1) <= 16):
        return None
    if backends.current_kernel() not in ("auto", "decode"):
        return None
    B, N, P, M, n_new = check_indexed_cache(q, k_cache, v_cache, k, block_table, None)
    if P < 16 or P & (P - 1) or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        return None
    kt, vt, qt = k_cache.permute(0, 2, 1, 3), v_cache.permute(0, 2, 1, 3), q.transpose(1, 2)   # pages as (N, Hkv, P, D)
    if backends.rejection("decode", qt, kt, vt) is not None or q.size(2) % k_cache.size(2) != 0:
        return None
    S = M * P
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (new keys and values for the cache)")
    if k is not None and cache_seqlens is None:
        raise ValueError("cache_seqlens is required with k/v: it says where the new keys go")
    if k is not None and (k.shape != (B, n_new, *k_cache.shape[2:]) or v.shape != k.shape or k.dtype != k_cache.dtype
                          or k.device != k_cache.device or v.dtype != k.dtype):
        raise ValueError(f"k.shape={tuple(k.shape)}, v.shape={tuple(v.shape)} must be (B, Lnew, Hkv, D) = "
                         f"({B}, Lnew, {k_cache.size(2)}, {k_cache.size(3)}) in k_cache's dtype and device")
    if cache_seqlens is None:
        lens = torch.full((B,), S, dtype=torch.int32, device=q.device)
    elif isinstance(cache_seqlens, Tensor):
        if cache_seqlens.dtype not in (torch.int32, torch.int64) or cache_seqlens.shape != (B,):
            raise ValueError(f"cache_seqlens must be an int32/int64 tensor of shape (B,)=({B},); got "
                             f"dtype={cache_seqlens.dtype}, shape={tuple(cache_seqlens.shape)}")
        if cache_seqlens.device != q.device:
            raise ValueError(f"cache_seqlens.device={cache_seqlens.device} must equal q.device={q.device}")
        lens = cache_seqlens
    else:
        lens = torch.full((B,), integer(cache_seqlens, "cache_seqlens"), dtype=torch.int32, device=q.device)
    if check_lengths and B > 0 and not torch.compiler.is_compiling() and not torch.cuda.is_current_stream_capturing():
        lo, hi = torch.stack(torch.aminmax(lens.to(torch.int64))).tolist()   # one read-back
        if lo < 0 or hi + n_new > S:
            raise ValueError(f"cache_seqlens must lie in [0, {S - n_new}] (block_table.size(1)={M} pages of "
                             f"page_block_size={P} keys, {n_new} new keys); got values from {lo} to {hi}")
        used = torch.arange(M, device=q.device) < ((lens.to(torch.int64) + n_new + P - 1) // P).unsqueeze(1)
        bad = used & ((block_table < 0) | (block_table >= N))
        if bool(bad.any()):
            b, j = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"block_table[{b}, {j}]={int(block_table[b, j])} is not a page of k_cache "
                             f"(k_cache.size(0)={N} pages)")
    if n_new > 0:                                        # the new keys into their pages, in place
        pos = lens.to(torch.int64).unsqueeze(1) + torch.arange(n_new, device=q.device)          # (B, Lnew)
        pages = block_table.to(torch.int64).gather(1, (pos // P).clamp(max=M - 1))
        k_cache.index_put_((pages, pos % P), k)
        v_cache.index_put_((pages, pos % P), v)
    lens = (lens + n_new if n_new > 0 else lens).to(torch.int32).contiguous()
    extras = NO_EXTRAS
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None:
        causal, extras = flash_options(causal, window_size, softcap, alibi_slopes, S, q, B, q.shape[2])
    scale = 1.0 / math.sqrt(q.size(-1)) if softmax_scale is None else finite_scale(softmax_scale, "softmax_scale")
    out, lse = paged_decode(qt, kt, vt, block_table, lens, scale, causal, S - q.shape[1], extras)
    return out.transpose(1, 2), lse
