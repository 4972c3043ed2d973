"""flash_attn_with_kvcache where the CUDA kernels read the cache in place: a paged cache
(block_table), cache rows chosen by index (cache_batch_idx) and rows that start late
(cache_leftpad)."""
import math

import torch
from torch import Tensor

from . import backends
from ._checks import check_indexed_cache, finite_scale, integer
from ._flash_options import NO_WINDOW as _NO_WINDOW, check_seqlens_tensor, flash_options
from .ops import NO_EXTRAS, attention_forward, paged_attention


def _lengths(cache_seqlens, B, S, device):
    """cache_seqlens as an int32/int64 (B,) tensor on the device (an int is broadcast)."""
    if cache_seqlens is None:
        return torch.full((B,), S, dtype=torch.int32, device=device)
    if isinstance(cache_seqlens, Tensor):
        return check_seqlens_tensor(cache_seqlens, B, device)
    return torch.full((B,), integer(cache_seqlens, "cache_seqlens"), dtype=torch.int32, device=device)


def _check_new_keys(k, v, B, n_new, k_cache, cache_seqlens):
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (new keys and values for the cache)")
    if k is not None and cache_seqlens is None:
        raise ValueError("cache_seqlens is required with k/v: it says where the new keys go")
    if k is not None and (k.shape != (B, n_new, *k_cache.shape[2:]) or v.shape != k.shape or k.dtype != k_cache.dtype
                          or k.device != k_cache.device or v.dtype != k.dtype):
        raise ValueError(f"k.shape={tuple(k.shape)}, v.shape={tuple(v.shape)} must be (B, Lnew, Hkv, D) = "
                         f"({B}, Lnew, {k_cache.size(2)}, {k_cache.size(3)}) in k_cache's dtype and device")


def _checking(check_lengths, B, q):
    return check_lengths and B > 0 and not torch.compiler.is_compiling() and not torch.cuda.is_current_stream_capturing()


def kvcache_rows(q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, cache_leftpad, softmax_scale, causal,
                 window_size, softcap, alibi_slopes, check_lengths):
    """flash_attn_with_kvcache with cache_batch_idx and/or cache_leftpad (no block_table) on CUDA
    tensors, read in place by every CUDA kernel: q row b reads cache row cache_batch_idx[b], from key
    cache_leftpad[b] (checked by check_leftpad) to cache_seqlens[b] + Lnew; the new keys land at
    cache_seqlens[b] .. of that cache row. Returns (out (B, Lq, Hq, D), lse (B, Hq, Lq)), or None
    where the caches' last dim is not contiguous (the gathering path then answers)."""
    if not (isinstance(q, Tensor) and q.is_cuda and q.dim() == 4):
        return None
    if cache_batch_idx is not None:   # its values (range, repeats with new keys) read back with check_lengths
        B, N, S, _, n_new = check_indexed_cache(q, k_cache, v_cache, k, None, cache_batch_idx,
                                                read_values=_checking(check_lengths, q.size(0), q))
    else:
        B, S = q.size(0), k_cache.size(1)
        n_new = k.size(1) if isinstance(k, Tensor) and k.dim() == 4 else 0
        if k_cache.dim() != 4 or k_cache.size(0) != B or v_cache.shape != k_cache.shape:
            raise ValueError(f"k_cache.shape={tuple(k_cache.shape)}, v_cache.shape={tuple(v_cache.shape)} must both be "
                             f"(B, S_max, Hkv, D) with B=q.size(0)={B}")
    if k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1 or k_cache.dtype != q.dtype or k_cache.device != q.device:
        return None
    _check_new_keys(k, v, B, n_new, k_cache, cache_seqlens)
    lens = _lengths(cache_seqlens, B, S, q.device)
    idx = None if cache_batch_idx is None else cache_batch_idx.to(torch.int32).contiguous()
    if _checking(check_lengths, B, q):
        lo, hi = torch.stack(torch.aminmax(lens.to(torch.int64))).tolist()   # one read-back
        if lo < 0 or hi + n_new > S:
            raise ValueError(f"cache_seqlens must lie in [0, {S - n_new}] (k_cache.size(1)={S}, {n_new} new keys); "
                             f"got values from {lo} to {hi}")
    if n_new > 0:                                        # the new keys into their cache rows, in place
        rows = torch.arange(B, device=q.device) if idx is None else idx.to(torch.int64)
        pos = lens.to(torch.int64).unsqueeze(1) + torch.arange(n_new, device=q.device)          # (B, Lnew)
        k_cache.index_put_((rows.unsqueeze(1).expand(B, n_new), pos), k)
        v_cache.index_put_((rows.unsqueeze(1).expand(B, n_new), pos), v)
    total = lens + n_new if n_new > 0 else lens
    start = None
    if cache_leftpad is not None:                        # the keys from each row's start
        start = cache_leftpad.contiguous()
        total = total - start
    total = total.to(torch.int32).contiguous()
    opts = (-1, -1, 0.0, None, None)
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None:
        causal, extras = flash_options(causal, window_size, softcap, alibi_slopes, S, q, B, q.shape[1])
        opts = tuple(extras)[:5]
    scale = 1.0 / math.sqrt(q.size(-1)) if softmax_scale is None else finite_scale(softmax_scale, "softmax_scale")
    qt, kt, vt = q.transpose(1, 2), k_cache.transpose(1, 2), v_cache.transpose(1, 2)   # (B or N, H, S, D) views
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, S - q.shape[1], seqlens_k=total,
                                 extras=opts + (None, None, 0, 0, None, idx, start))
    return out.transpose(1, 2), lse


def kvcache_paged(q, k_cache, v_cache, k, v, cache_seqlens, block_table, softmax_scale, causal, window_size, softcap,
                  alibi_slopes, check_lengths):
    """flash_attn_with_kvcache with block_table where a CUDA kernel reads the pages in place: up to
    16 queries in the decode kernel, longer ones (chunked prefill) in the sm80 prefill kernel
    ("auto" picks by the query length; "decode" or "prefill" forced serve what they can), for a
    power-of-two page of 16 keys or more. The new keys are written into their pages first (device
    ops, no host synchronisation). Returns (out (B, Lq, Hq, D), lse (B, Hq, Lq)), or None for any
    other call (the gathering path serves it)."""
    if not (isinstance(q, Tensor) and q.is_cuda and q.dim() == 4):
        return None
    kernel = {"auto": "decode" if q.size(1) <= 16 else "prefill", "decode": "decode", "prefill": "prefill",
              "tensor_core": "prefill"}.get(backends.current_kernel())
    if kernel is None or (kernel == "decode" and q.size(1) > 16):
        return None
    B, N, P, M, n_new = check_indexed_cache(q, k_cache, v_cache, k, block_table, None)
    if P < 16 or P & (P - 1) or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        return None
    kt, vt, qt = k_cache.permute(0, 2, 1, 3), v_cache.permute(0, 2, 1, 3), q.transpose(1, 2)   # pages as (N, Hkv, P, D)
    if backends.rejection(kernel, qt, kt, vt) is not None or q.size(2) % k_cache.size(2) != 0:
        return None
    S = M * P
    _check_new_keys(k, v, B, n_new, k_cache, cache_seqlens)
    lens = _lengths(cache_seqlens, B, S, q.device)
    if _checking(check_lengths, B, q):
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
    out, lse = paged_attention(qt, kt, vt, block_table, lens, scale, causal, S - q.shape[1], extras, kernel)
    return out.transpose(1, 2), lse
