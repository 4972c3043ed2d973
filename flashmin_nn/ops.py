"""The one op under every public function, and the autograd.Function around it.

    torch.ops.flashmin.attention_fwd(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                                     window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None)
        -> (out, lse)

q: (B, Hq, L, D), k/v: (B, Hkv, S, D) (any strides, last dim contiguous); attn_mask: None or
already expanded to (B, Hq, L, S); seqlens_k: None or int32 (B,), batch b attending to its first
seqlens_k[b] keys only; query i sees key j iff j <= i + causal_offset when is_causal (with
seqlens_k the offset moves with each batch's length: causal_offset + seqlens_k[b] - S);
causal_offset is a SymInt, so under torch.compile with dynamic shapes an offset derived from the
sequence lengths stays symbolic and one graph serves every length;
kernel: a concrete name from flashmin_nn.backends. out: (B, Hq, L, D) stored as (B, L, Hq, D);
lse: (B, Hq, L) fp32. See docs/internals.md.

The diagonal of query row i is key d_i = i + causal_offset (+ seqlens_k[b] - S with seqlens_k),
whether or not is_causal is set. window_left / window_right (-1: no limit): query i sees key j
only if d_i - window_left <= j <= d_i + window_right. softcap > 0: each scaled score s becomes
softcap * tanh(s / softcap), before the bias and the masks. alibi_slopes: fp32 (Hq,) or (B, Hq),
-slope * |j - d_i| added to the scaled score. sinks: fp32 (Hq,), one more logit per head in the
softmax's denominator that contributes no value (lse includes it). These five are served by every
kernel: the CPU path, a forced "reference" on any device, and fused in each CUDA kernel.

The schema is defined here; the CPU implementation is flashmin_nn/reference.py; the CUDA one is
registered by the extension in C++ (csrc/flashmin_api.cpp) when it is loaded, so an eager call
goes straight from the dispatcher to C++ (its int64_t causal_offset is what the dispatcher hands a
C++ kernel for a SymInt argument). A fake (shape-only) implementation lets torch.compile trace
through the op with no graph break.
"""
from typing import Optional

import torch
from torch import Tensor

from . import _ext, backends, reference

_lib = torch.library.Library("flashmin", "DEF")
_lib.define(
    "attention_fwd(Tensor q, Tensor k, Tensor v, Tensor? attn_mask, Tensor? seqlens_k, float scale, "
    "bool is_causal, SymInt causal_offset, str kernel, int window_left=-1, int window_right=-1, float softcap=0.0, "
    "Tensor? alibi_slopes=None, Tensor? sinks=None) -> (Tensor, Tensor)"
)


@torch.library.impl(_lib, "attention_fwd", "CPU")
def _attention_fwd_cpu(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                       window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None):
    if kernel != "reference":
        raise ValueError(f"kernel={kernel!r}: CPU tensors run the 'reference' kernel only "
                         f"(the CUDA kernels are {backends.CUDA_KERNELS})")
    return _reference(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset,
                      window_left, window_right, softcap, alibi_slopes, sinks)


def _reference(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset,
               window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None):
    # With an offset of S - 1 or more every query sees every key (a decode step): no causal mask to
    # build. Only for concrete ints: a forced "reference" on CUDA runs here in traced Python too, where
    # a branch on a SymInt would specialise the graph.
    if is_causal and type(causal_offset) is int and type(k.shape[2]) is int and causal_offset >= k.shape[2] - 1:
        is_causal = False
    return reference.tiled_attention(q, k, v, attn_mask, scale, is_causal, causal_offset, seqlens_k=seqlens_k,
                                     window=(window_left, window_right), softcap=softcap,
                                     alibi_slopes=alibi_slopes, sinks=sinks)


@torch.library.register_fake("flashmin::attention_fwd")
def _attention_fwd_fake(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                        window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None):
    B, H, L, D = q.shape
    out = q.new_empty((B, L, H, D)).transpose(1, 2)        # (B, H, L, D), stored as (B, L, H, D)
    lse = q.new_empty((B, H, L), dtype=torch.float32)
    return out, lse


_lib.define("backward_unsupported(Tensor grad) -> Tensor")

_BACKWARD_MESSAGE = (
    "flashmin is forward-only (inference): its attention has no backward pass. For training, "
    "use torch.nn.functional.scaled_dot_product_attention (or FlashAttention-2's flash_attn); "
    "for inference, run flashmin under torch.no_grad() or torch.inference_mode()."
)


@torch.library.impl(_lib, "backward_unsupported", "CompositeExplicitAutograd")
def _backward_unsupported(grad):
    raise NotImplementedError(_BACKWARD_MESSAGE)


@torch.library.register_fake("flashmin::backward_unsupported")
def _backward_unsupported_fake(grad):
    # torch.compile traces backward graphs ahead of time: the refusal happens when backward runs.
    return torch.empty_like(grad)


_attention_fwd = torch.ops.flashmin.attention_fwd.default   # resolved once: every decode step calls it


# The options of the op past `kernel` (window_left, window_right, softcap, alibi_slopes, sinks) as
# a tuple, or NO_EXTRAS (None): their defaults (no window, no softcap, no ALiBi, no sinks).
NO_EXTRAS = None


def _forward(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, extras=NO_EXTRAS):
    if kernel == "reference" and q.is_cuda:   # forced reference on a GPU: plain PyTorch ops
        return _reference(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, *(extras or ()))
    if extras is None:
        return _attention_fwd(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel)
    return _attention_fwd(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, *extras)


class _AttentionFn(torch.autograd.Function):
    """Forward through the op; backward refuses, clearly: flashmin is inference-only."""

    @staticmethod
    def forward(ctx, q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, extras):
        out, lse = _forward(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, extras)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        # Raises NotImplementedError when it runs (an op, so that compiling a forward with grad
        # enabled still works: only an actual backward refuses).
        grad_q = torch.ops.flashmin.backward_unsupported(grad_out)
        return grad_q, None, None, None, None, None, None, None, None, None


def attention_forward(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], scale: float,
                      is_causal: bool, causal_offset, seqlens_k: Optional[Tensor] = None, extras=NO_EXTRAS):
    """Pick the kernel and run it. Arguments already validated (flashmin_nn/_checks.py).

    extras: (window_left, window_right, softcap, alibi_slopes, sinks) as the op takes them, validated
    (NO_EXTRAS: none); every kernel serves them.

    causal_offset: an int, or a SymInt under torch.compile. When it lets every query see every key
    (a decode step) the causal flag is dropped, but only for plain ints: a branch on a SymInt would
    specialise the graph on every key length. Under torch.compile the flag stays: the result is the
    same (the offset hides no key), the CPU implementation drops it itself (_reference above) and
    the CUDA binding's decode plan reads such an offset as seeing every key (prepare_decode)."""
    S = k.shape[2]
    if is_causal and type(causal_offset) is int and type(S) is int and causal_offset >= S - 1:
        is_causal = False
    scale = float(scale)            # a SymFloat (1 / sqrt of a symbolic head dim) becomes a constant
    kernel = backends.resolve(q, k, v, attn_mask)
    if kernel != "reference" and q.is_cuda:
        _ext.load()                 # registers the CUDA implementation; a no-op after the first call
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad
                                    or (attn_mask is not None and attn_mask.requires_grad)):
        return _AttentionFn.apply(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, extras)
    return _forward(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, extras)
