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

The FlashAttention-2 functions (flash_attn_func, flash_attn_with_kvcache, flash_attn_varlen_func)
live in flash_attn_interface.py, their options' checks in _flash_options.py. Flags (causal,
is_causal, enable_gqa) must be bools, as torch's SDPA requires.
"""
import math
from typing import Optional

import torch
from torch import Tensor

from ._checks import check_qkv, describe, expand_mask, finite_scale, integer, not_a_bool
from ._flash_options import NO_WINDOW as _NO_WINDOW
from ._flash_options import check_sinks, flash_options, window_pair
from .ops import NO_EXTRAS, attention_forward


def attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
              scale: Optional[float] = None, is_causal: bool = False, causal_offset: int = 0,
              return_lse: bool = False, *, window_size=_NO_WINDOW, softcap: float = 0.0,
              alibi_slopes: Optional[Tensor] = None, sinks: Optional[Tensor] = None,
              seqlens_k: Optional[Tensor] = None):
    """Attention over (B, H, L, D) tensors with an explicit causal alignment.

    query: (B, Hq, L, D); key, value: (B, Hkv, S, D) with Hq a multiple of Hkv (grouped-query
    attention: query head h reads kv head h // (Hq // Hkv)). Any strides with a contiguous last dim.
    attn_mask: bool (True = attend) or float (added to the scaled scores), broadcastable to
    (B, Hq, L, S). scale: a finite number, default 1 / sqrt(D). With is_causal, query i sees key j
    iff j <= i + causal_offset (an int; under torch.compile it may be a SymInt, e.g. from the
    shapes, and one graph then serves every length). A query that sees no key gets zeros (and lse = -inf).

    Keyword-only, relative to the diagonal (query i's is key i + causal_offset, causal or not):
    window_size (left, right), -1 = no limit: key j is seen only if i + causal_offset - left <= j <=
    i + causal_offset + right; softcap > 0: scores s -> softcap * tanh(s / softcap) before the mask;
    alibi_slopes float32 (Hq,) or (B, Hq): -slope * |j - i - causal_offset| added to the scores;
    sinks (Hq,) float: a logit per head that joins the softmax's denominator with no value (as
    gpt-oss's attention sinks; lse includes it). Every kernel runs them (fused in the CUDA kernels;
    key tiles outside a window are skipped, not masked).
    seqlens_k: an int32 tensor (B,) on query's device: batch row b attends to its first seqlens_k[b]
    keys only (the rest of key/value, e.g. a preallocated cache's empty slots, is never read), and
    the diagonal moves with it: query i's is key i + causal_offset + seqlens_k[b] - S. Read on the
    device (no synchronisation; a CUDA graph or torch.compile replays it with new values); values
    are clamped to [0, S].

    Returns out (B, Hq, L, D) in query's dtype, stored as (B, L, Hq, D) so `out.transpose(1, 2)`
    is contiguous; with return_lse, also lse (B, Hq, L) float32, the natural-log log-sum-exp.
    """
    if is_causal is not True and is_causal is not False:
        not_a_bool("is_causal", is_causal)
    if type(causal_offset) is not int:
        causal_offset = integer(causal_offset, "causal_offset")
    query, key, value = check_qkv(query, key, value)
    B, H, L, D = query.shape
    mask = None if attn_mask is None else expand_mask(attn_mask, B, H, L, key.shape[2], query)
    scale = 1.0 / math.sqrt(D) if scale is None else finite_scale(scale)
    extras = NO_EXTRAS
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None \
            or sinks is not None:
        extras = _options(window_size, softcap, alibi_slopes, sinks, query, B, H)
    if seqlens_k is not None:
        seqlens_k = _check_seqlens_k(seqlens_k, query, B, key.shape[2])
    out, lse = attention_forward(query, key, value, mask, scale, is_causal, causal_offset, seqlens_k=seqlens_k,
                                 extras=extras)
    return (out, lse) if return_lse else out


def _check_seqlens_k(seqlens_k, q: Tensor, batch: int, S: int) -> Tensor:
    """seqlens_k as the op takes it: int32 and contiguous. The op clamps the values to [0, S] where
    it reads them (in the kernels, and in the reference path), so a value past the keys cannot make
    a kernel read past them, and an int32 tensor goes in as it is: no clamp kernel per call, which
    a model's static-cache step would pay in every layer. int64 is clamped before the cast."""
    if not isinstance(seqlens_k, Tensor) or seqlens_k.dtype not in (torch.int32, torch.int64) \
            or tuple(seqlens_k.shape) != (batch,):
        raise ValueError(f"seqlens_k must be an int32 tensor of shape (B,)=({batch},); got {describe(seqlens_k)}")
    if seqlens_k.device != q.device:
        raise ValueError(f"seqlens_k.device={seqlens_k.device} must equal query.device={q.device}")
    if seqlens_k.dtype == torch.int32:
        return seqlens_k.contiguous()
    return seqlens_k.clamp(0, S).to(torch.int32).contiguous()


def _options(window_size, softcap, alibi_slopes, sinks, q: Tensor, batch: int, heads: int):
    """The op's extras for attention(): the window taken as given (any negative side: no limit)."""
    left, right = window_pair(window_size)
    _, extras = flash_options(False, _NO_WINDOW, softcap, alibi_slopes, math.inf, q, batch, heads)
    _, _, cap, alibi, _ = extras if extras is not None else (-1, -1, 0.0, None, None)
    sinks = None if sinks is None else check_sinks(sinks, q, heads)
    if left < 0 and right < 0 and cap == 0.0 and alibi is None and sinks is None:
        return NO_EXTRAS
    return (left, right, cap, alibi, sinks)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """Drop-in for torch.nn.functional.scaled_dot_product_attention, for inference.

    query: (B, Hq, L, E); key, value: (B, Hkv, S, E); returns (B, Hq, L, E). Same meaning for every
    argument as torch's: bool mask True = attend, float mask added, both broadcast to (B, Hq, L, S);
    is_causal aligned top-left when L != S; Hq != Hkv only with enable_gqa. Differences: rank must
    be 4; dropout_p must be 0 (inference); scale must be finite; a query whose keys are all masked
    gets zeros (as torch's math and CPU flash backends give in torch 2.13).
    """
    if dropout_p != 0.0:
        raise ValueError(f"dropout_p={describe(dropout_p)}: flashmin is inference-only, dropout_p must be 0")
    if is_causal is not True and is_causal is not False:
        not_a_bool("is_causal", is_causal)
    if enable_gqa is not False and enable_gqa is not True:
        not_a_bool("enable_gqa", enable_gqa)
    if is_causal and attn_mask is not None:
        raise ValueError("attn_mask and is_causal=True cannot be given together (as in torch): fold the causal "
                         "pattern into attn_mask, or drop attn_mask")
    if not enable_gqa and isinstance(key, Tensor) and isinstance(query, Tensor):
        ks, qs = key.shape, query.shape             # (cheaper than key.dim() and key.size(1))
        if len(ks) == 4 and len(qs) == 4 and ks[1] != qs[1]:
            raise ValueError(f"key.size(1)={ks[1]} must equal query.size(1)={qs[1]}; "
                             "pass enable_gqa=True for grouped-query attention")
    return attention(query, key, value, attn_mask, scale, is_causal, 0)
