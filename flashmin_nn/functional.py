"""The public attention functions: thin adapters (layout, defaults, causal alignment) over one op.

              keys j ->                         keys j ->
    queries   1 0 0 0 0 0      queries          1 1 1 0 0 0
    i         1 1 0 0 0 0      i                1 1 1 1 0 0
    |         1 1 1 0 0 0      |                1 1 1 1 1 0
    v                          v                1 1 1 1 1 1
    top-left (L=3, S=6):                        bottom-right (L=4, S=6):
    scaled_dot_product_attention                flash_attn_func, KV caches
    (causal_offset = 0)                         (causal_offset = S - L)

With causal masking, query i sees key j iff j <= i + causal_offset.
"""
import math
from typing import Optional

import torch
from torch import Tensor

from ._checks import check_qkv, expand_mask
from .ops import attention_forward


def attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
              scale: Optional[float] = None, is_causal: bool = False, causal_offset: int = 0,
              return_lse: bool = False):
    """Attention over (B, H, L, D) tensors with an explicit causal alignment.

    query: (B, Hq, L, D); key, value: (B, Hkv, S, D) with Hq a multiple of Hkv (grouped-query
    attention: query head h reads kv head h // (Hq // Hkv)). Any strides with a contiguous last dim.
    attn_mask: bool (True = attend) or float (added to the scaled scores), broadcastable to
    (B, Hq, L, S). scale: defaults to 1 / sqrt(D). With is_causal, query i sees key j iff
    j <= i + causal_offset. A query that sees no key gets zeros (and lse = -inf).

    Returns out (B, Hq, L, D) in query's dtype, stored as (B, L, Hq, D) so `out.transpose(1, 2)`
    is contiguous; with return_lse, also lse (B, Hq, L) float32, the natural-log log-sum-exp.
    """
    query, key, value = check_qkv(query, key, value)
    B, H, L, D = query.shape
    mask = None if attn_mask is None else expand_mask(attn_mask, B, H, L, key.shape[2], query)
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    out, lse = attention_forward(query, key, value, mask, scale, is_causal, causal_offset)
    return (out, lse) if return_lse else out


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """Drop-in for torch.nn.functional.scaled_dot_product_attention, for inference.

    query: (B, Hq, L, E); key, value: (B, Hkv, S, E); returns (B, Hq, L, E). Same meaning for every
    argument as torch's: bool mask True = attend, float mask added, both broadcast to (B, Hq, L, S);
    is_causal aligned top-left when L != S; Hq != Hkv only with enable_gqa. Differences: rank must
    be 4; dropout_p must be 0 (inference); a query whose keys are all masked gets zeros (torch: NaN).
    """
    if dropout_p != 0.0:
        raise ValueError(f"dropout_p={dropout_p}: flashmin is inference-only, dropout_p must be 0")
    if is_causal and attn_mask is not None:
        raise ValueError("attn_mask and is_causal=True cannot be given together (as in torch): fold the causal "
                         "pattern into attn_mask, or drop attn_mask")
    if not enable_gqa and isinstance(key, Tensor) and isinstance(query, Tensor):
        ks, qs = key.shape, query.shape             # (cheaper than key.dim() and key.size(1))
        if len(ks) == 4 and len(qs) == 4 and ks[1] != qs[1]:
            raise ValueError(f"key.size(1)={ks[1]} must equal query.size(1)={qs[1]}; "
                             "pass enable_gqa=True for grouped-query attention")
    return attention(query, key, value, attn_mask, scale, is_causal, 0)


def flash_attn_func(q: Tensor, k: Tensor, v: Tensor, softmax_scale: Optional[float] = None, causal: bool = False,
                    return_lse: bool = False, *, dropout_p: float = 0.0, window_size=(-1, -1)):
    """Drop-in for FlashAttention-2's flash_attn_func, forward only.

    q: (B, Sq, Hq, D); k, v: (B, Sk, Hkv, D), Hq a multiple of Hkv (GQA/MQA). causal is aligned
    bottom-right: query i sees key j iff j <= i + Sk - Sq, so the last query sees every key (what a
    KV cache needs); when Sq > Sk the first Sq - Sk queries see nothing and get zeros.
    Returns out (B, Sq, Hq, D) contiguous, and with return_lse also lse (B, Hq, Sq) float32.
    """
    if dropout_p != 0.0:
        raise ValueError(f"dropout_p={dropout_p}: flashmin is inference-only, dropout_p must be 0")
    if tuple(window_size) != (-1, -1):
        raise ValueError(f"window_size={tuple(window_size)}: sliding-window attention is not supported")
    q, k, v = check_qkv(q, k, v, names=("q", "k", "v"), layout="blhd")
    qs, ks = q.shape, k.shape
    scale = 1.0 / math.sqrt(qs[3]) if softmax_scale is None else float(softmax_scale)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)   # (B, H, S, D) views
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, ks[1] - qs[1])
    out = out.transpose(1, 2)                                              # (B, Sq, Hq, D), contiguous
    return (out, lse) if return_lse else out


def flash_attn_with_kvcache(q: Tensor, k_cache: Tensor, v_cache: Tensor, k: Optional[Tensor] = None,
                            v: Optional[Tensor] = None, cache_seqlens=None, softmax_scale: Optional[float] = None,
                            causal: bool = False, return_lse: bool = False, *, check_lengths: bool = True):
    """Drop-in for FlashAttention-2's flash_attn_with_kvcache, forward only: decode against a KV cache.

    q: (B, Lq, Hq, D), typically Lq = 1 (or a few tokens for speculative decoding).
    k_cache, v_cache: (B, S_max, Hkv, D), Hq a multiple of Hkv.
    k, v: optional new keys/values (B, Lnew, Hkv, D), written into the caches IN PLACE at positions
    cache_seqlens[b] .. cache_seqlens[b] + Lnew - 1 before attending.
    cache_seqlens: int or int tensor (B,): keys already in each batch row's cache (None: the whole
    cache, S_max). Batch row b then attends to its first cache_seqlens[b] + Lnew keys.
    causal: aligned bottom-right per batch row: query i sees key j iff j <= i + len_b - Lq.
    check_lengths: verify 0 <= cache_seqlens and cache_seqlens + Lnew <= S_max; for a CUDA tensor this
    reads two numbers back to the host (a synchronisation); pass False to skip it in a hot loop.
    Returns out (B, Lq, Hq, D), and with return_lse also lse (B, Hq, Lq) float32.
    """
    q, k_cache, v_cache = check_qkv(q, k_cache, v_cache, names=("q", "k_cache", "v_cache"), layout="blhd")
    B, S_max, Hkv, D = k_cache.shape
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (new keys and values for the cache)")
    n_new = 0
    if k is not None:
        for t, n in ((k, "k"), (v, "v")):
            if not isinstance(t, Tensor):
                raise TypeError(f"{n} must be a torch.Tensor; got {type(t).__name__}")
            if t.dim() != 4 or t.shape[0] != B or t.shape[2:] != k_cache.shape[2:]:
                raise ValueError(f"{n}.shape={tuple(t.shape)} must be (B, Lnew, Hkv, D) = ({B}, Lnew, {Hkv}, {D})")
            if t.dtype != k_cache.dtype or t.device != k_cache.device:
                raise TypeError(f"{n} must match k_cache's dtype and device; got {n}.dtype={t.dtype}, "
                                f"{n}.device={t.device} vs {k_cache.dtype}, {k_cache.device}")
        if v.shape != k.shape:
            raise ValueError(f"v.shape={tuple(v.shape)} must equal k.shape={tuple(k.shape)}")
        n_new = k.size(1)
        if cache_seqlens is None:
            raise ValueError("cache_seqlens is required with k/v: it says where the new keys go")

    lens = None                                            # (B,) int32: keys each batch row attends to
    if cache_seqlens is not None:
        if isinstance(cache_seqlens, int):
            if check_lengths and not 0 <= cache_seqlens <= S_max - n_new:
                raise ValueError(f"cache_seqlens={cache_seqlens} with {n_new} new keys does not fit the cache "
                                 f"(k_cache.size(1)={S_max})")
            check_lengths = False                           # checked on the host: no device read-back
            cache_seqlens = torch.full((B,), cache_seqlens, dtype=torch.int32, device=q.device)
        if not isinstance(cache_seqlens, Tensor):
            raise TypeError(f"cache_seqlens must be an int or a tensor; got {type(cache_seqlens).__name__}")
        if cache_seqlens.dtype not in (torch.int32, torch.int64) or cache_seqlens.shape != (B,):
            raise ValueError(f"cache_seqlens must be an int32/int64 tensor of shape (B,)=({B},); got "
                             f"dtype={cache_seqlens.dtype}, shape={tuple(cache_seqlens.shape)}")
        if cache_seqlens.device != q.device:
            raise ValueError(f"cache_seqlens.device={cache_seqlens.device} must equal q.device={q.device}")
        if check_lengths and B > 0:
            lo, hi = torch.stack(torch.aminmax(cache_seqlens)).tolist()   # one read-back, not two
            if lo < 0 or hi + n_new > S_max:
                raise ValueError(f"cache_seqlens must lie in [0, {S_max - n_new}] (k_cache.size(1)={S_max}, "
                                 f"{n_new} new keys); got values from {lo} to {hi}")
        if n_new > 0:
            pos = cache_seqlens.to(torch.int64).unsqueeze(1) + torch.arange(n_new, device=q.device)   # (B, Lnew)
            index = pos.view(B, n_new, 1, 1).expand(B, n_new, Hkv, D)
            k_cache.scatter_(1, index, k)                 # in place, no host synchronisation
            v_cache.scatter_(1, index, v)
        lens = cache_seqlens + n_new if n_new > 0 else cache_seqlens
        lens = lens.to(torch.int32).contiguous()           # no copy for a contiguous int32 tensor

    scale = 1.0 / math.sqrt(D) if softmax_scale is None else float(softmax_scale)
    qt, kt, vt = q.transpose(1, 2), k_cache.transpose(1, 2), v_cache.transpose(1, 2)   # (B, H, S, D) views
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, S_max - q.shape[1], seqlens_k=lens)
    out = out.transpose(1, 2)                                                         # (B, Lq, Hq, D)
    return (out, lse) if return_lse else out
