"""flashmin as an nn.Module."""
from typing import Optional

from torch import Tensor, nn

from .functional import scaled_dot_product_attention


class FlashAttention(nn.Module):
    """Scaled dot-product attention as a module, over flashmin_nn.scaled_dot_product_attention.

    FlashAttention(is_causal=False, scale=None, enable_gqa=False)(query, key, value, attn_mask=None)
    takes (B, Hq, L, E) query and (B, Hkv, S, E) key/value, returns (B, Hq, L, E). No parameters;
    forward-only (backward raises).
    """

    def __init__(self, is_causal: bool = False, scale: Optional[float] = None, enable_gqa: bool = False):
        super().__init__()
        self.is_causal = is_causal
        self.scale = scale
        self.enable_gqa = enable_gqa

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        return scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, is_causal=self.is_causal,
                                            scale=self.scale, enable_gqa=self.enable_gqa)

    def extra_repr(self) -> str:
        return f"is_causal={self.is_causal}, scale={self.scale}, enable_gqa={self.enable_gqa}"
