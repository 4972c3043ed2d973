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
    mask = expand_mask(attn_mask, B, H, L, key.size(2), query)
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
    if not enable_gqa and isinstance(key, Tensor) and isinstance(query, Tensor) and key.dim() == 4 \
            and query.dim() == 4 and key.size(1) != query.size(1):
        raise ValueError(f"key.size(1)={key.size(1)} must equal query.size(1)={query.size(1)}; "
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
    D = q.size(-1)
    scale = 1.0 / math.sqrt(D) if softmax_scale is None else float(softmax_scale)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)   # (B, H, S, D) views
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, kt.size(2) - qt.size(2))
    out = out.transpose(1, 2)                                              # (B, Sq, Hq, D), contiguous
    return (out, lse) if return_lse else out
