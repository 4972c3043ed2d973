"""flashmin: forward-only FlashAttention for PyTorch inference.

    import flashmin_nn
    out = flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True)   # (B, H, L, E)
    out = flashmin_nn.flash_attn_func(q, k, v, causal=True)                   # (B, S, H, D)

Importing never compiles anything; CPU tensors run the PyTorch reference path, CUDA tensors the
CUDA kernels (built ahead of time, or on first use). Nor does it import transformers; but once
transformers is loaded (before or after flashmin_nn), `attn_implementation="fmin_attention"` is
registered with it (flashmin_nn/integrations/__init__.py).
"""
from . import ops  # noqa: F401  (defines torch.ops.flashmin.attention_fwd)
from .backends import KernelInfo, choose_kernel, current_kernel, list_kernels, use_kernel
from .flash_attn_interface import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache
from .functional import attention, scaled_dot_product_attention
from .integrations import register_with_transformers as _register_with_transformers
from .modules import FlashAttention

__version__ = "0.1.0"

__all__ = [
    "attention", "scaled_dot_product_attention", "flash_attn_func", "flash_attn_with_kvcache", "flash_attn_varlen_func",
    "FlashAttention",
    "use_kernel", "list_kernels", "choose_kernel", "current_kernel", "KernelInfo",
    "patch_gpt2", "patch_model", "unpatch", "patched",
]

_INTEGRATION = ("patch_gpt2", "patch_model", "unpatch", "patched")

_register_with_transformers()


def __getattr__(name):
    # transformers is imported only when the integration is used.
    if name in _INTEGRATION:
        from .integrations import transformers as _hf
        return getattr(_hf, name)
    raise AttributeError(f"module 'flashmin_nn' has no attribute {name!r}")
