"""The one op under every public function, and the autograd.Function around it.

    torch.ops.flashmin.attention_fwd(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                                     window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None,
                                     cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0,
                                     block_table=None, kv_batch_idx=None, k_leftpad=None)
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

Packed sequences (flash_attn_varlen_func): cu_seqlens_q / cu_seqlens_k int32 (n + 1,), q
(1, Hq, total_q, D), k/v (1, Hkv, total_k, D); sequence b is rows cu_seqlens_q[b] ..
cu_seqlens_q[b + 1] of q against rows cu_seqlens_k[b] .. of k and v, the longest max_seqlen_q x
max_seqlen_k; causal_offset is that of a max_seqlen_q x max_seqlen_k sequence and moves with each
one's lengths (causal_offset + (len_k - max_seqlen_k) - (len_q - max_seqlen_q)); no attn_mask or
seqlens_k; alibi_slopes (Hq,) or (n, Hq). out (1, Hq, total_q, D), lse (1, Hq, total_q); rows past
the last sequence get 0 and -inf. The CUDA side runs them in the prefill kernels.

A paged cache (flash_attn_with_kvcache's block_table): k/v (num_blocks, Hkv, page_size, D) views of
the pages, block_table int32 (B, max_blocks); batch row b's key j is row j % page_size of page
block_table[b, j // page_size], S = max_blocks * page_size (seqlens_k: its first seqlens_k[b]).
The CUDA side runs it in the decode kernel and, for longer queries (chunked prefill), in the sm80
prefill kernel (power-of-two pages of 16 keys or more).

flash_attn_with_kvcache's cache_batch_idx and cache_leftpad: kv_batch_idx int32 (B,), batch row b
reads row kv_batch_idx[b] of k and v (which may have any number of rows); k_leftpad int32 (B,),
with seqlens_k, batch row b's keys are its rows k_leftpad[b] .. k_leftpad[b] + seqlens_k[b] (seen
as keys 0 .. seqlens_k[b] - 1: the offsets move with seqlens_k as without it). Every CUDA kernel
reads both in place; neither goes with block_table or packed sequences.

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
    "Tensor? alibi_slopes=None, Tensor? sinks=None, Tensor? cu_seqlens_q=None, Tensor? cu_seqlens_k=None, "
    "SymInt max_seqlen_q=0, SymInt max_seqlen_k=0, Tensor? block_table=None, Tensor? kv_batch_idx=None, "
    "Tensor? k_leftpad=None) -> (Tensor, Tensor)"
)


@torch.library.impl(_lib, "attention_fwd", "CPU")
def _attention_fwd_cpu(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                       window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None,
                       cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, block_table=None,
                       kv_batch_idx=None, k_leftpad=None):
    if kernel != "reference":
        raise ValueError(f"kernel={kernel!r}: CPU tensors run the 'reference' kernel only "
                         f"(the CUDA kernels are {backends.CUDA_KERNELS})")
    if block_table is not None:
        k, v = gather_pages(k, block_table), gather_pages(v, block_table)
    k, v = select_rows(k, v, kv_batch_idx, k_leftpad, seqlens_k)
    if cu_seqlens_q is not None or cu_seqlens_k is not None:
        return _reference_packed(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale, is_causal,
                                 causal_offset, window_left, window_right, softcap, alibi_slopes, sinks)
    return _reference(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset,
                      window_left, window_right, softcap, alibi_slopes, sinks)


def select_rows(k, v, kv_batch_idx, k_leftpad, seqlens_k):
    """kv_batch_idx and k_leftpad (the op's meaning, docstring above) as copies: row b of the result
    is row kv_batch_idx[b] of k / v, its keys shifted to start at k_leftpad[b]."""
    if kv_batch_idx is not None:
        idx = kv_batch_idx.long().clamp(0, max(k.shape[0] - 1, 0))
        k, v = k[idx], v[idx]
    if k_leftpad is not None:
        if seqlens_k is None:
            raise ValueError("k_leftpad needs seqlens_k (the keys from each row's start)")
        B, H, S, D = k.shape
        pos = (torch.arange(S, device=k.device).view(1, S) + k_leftpad.long().view(B, 1)).clamp(0, max(S - 1, 0))
        at = pos.view(B, 1, S, 1).expand(B, H, S, D)
        k, v = k.gather(2, at), v.gather(2, at)
    return k, v


def gather_pages(pages, block_table):
    """(num_blocks, H, P, D) pages and an int32 (B, M) block_table -> the (B, H, M * P, D) rows they
    hold (a copy; entries past a row's keys may be anything in range, or are clamped into it)."""
    n, H, P, D = pages.shape
    idx = block_table.long().clamp(0, max(n - 1, 0))
    rows = pages[idx] if n > 0 else pages.new_zeros(*block_table.shape, H, P, D)   # (B, M, H, P, D)
    return rows.permute(0, 2, 1, 3, 4).reshape(block_table.shape[0], H, -1, D)


def _reference_packed(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale, is_causal,
                      causal_offset, window_left, window_right, softcap, alibi_slopes, sinks):
    """Packed sequences one at a time (the op's meaning, docstring above): reads cu_seqlens on the host."""
    if cu_seqlens_q is None or cu_seqlens_k is None:
        raise ValueError("cu_seqlens_q and cu_seqlens_k must be given together")
    out = q.new_zeros((1, q.shape[2], q.shape[1], q.shape[3])).transpose(1, 2)     # (1, Hq, total_q, D)
    lse = torch.full((1, q.shape[1], q.shape[2]), float("-inf"), dtype=torch.float32, device=q.device)
    cq, ck = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for b in range(len(cq) - 1):
        lq, lk = cq[b + 1] - cq[b], ck[b + 1] - ck[b]
        if lq == 0:
            continue
        slopes = alibi_slopes if alibi_slopes is None or alibi_slopes.dim() == 1 else alibi_slopes[b:b + 1]
        o, l = _reference(q[:, :, cq[b]:cq[b + 1]], k[:, :, ck[b]:ck[b + 1]], v[:, :, ck[b]:ck[b + 1]], None, None,
                          scale, is_causal, causal_offset + (lk - max_seqlen_k) - (lq - max_seqlen_q),
                          window_left, window_right, softcap, slopes, sinks)
        out[:, :, cq[b]:cq[b + 1]] = o
        lse[:, :, cq[b]:cq[b + 1]] = l
    return out, lse


def _reference(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset,
               window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None):
    # With an offset of S - 1 or more every query sees every key (a decode step): no causal mask to
    # build. Only for concrete ints: a forced "reference" on CUDA runs here in traced Python too, where
    # a branch on a SymInt would specialise the graph.
    if is_causal and type(causal_offset) is int and type(k.shape[2]) is int and causal_offset >= k.shape[2] - 1:
        is_causal = False
    if seqlens_k is not None:   # clamped where read, as the kernels do (csrc/common/block_info.cuh)
        seqlens_k = seqlens_k.clamp(0, k.shape[2])
    return reference.tiled_attention(q, k, v, attn_mask, scale, is_causal, causal_offset, seqlens_k=seqlens_k,
                                     window=(window_left, window_right), softcap=softcap,
                                     alibi_slopes=alibi_slopes, sinks=sinks)


@torch.library.register_fake("flashmin::attention_fwd")
def _attention_fwd_fake(q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel,
                        window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None, sinks=None,
                        cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, block_table=None,
                        kv_batch_idx=None, k_leftpad=None):
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
        if extras is not None and len(extras) > 9 and extras[9] is not None:   # a paged cache (paged_attention)
            k, v, extras = gather_pages(k, extras[9]), gather_pages(v, extras[9]), extras[:5]
        if extras is not None and len(extras) > 10:   # kv_batch_idx, k_leftpad
            k, v = select_rows(k, v, extras[10], extras[11] if len(extras) > 11 else None, seqlens_k)
            extras = extras[:5]
        if extras is not None and len(extras) > 5 and extras[5] is not None:   # packed sequences (packed_attention)
            return _reference_packed(q, k, v, *extras[5:], scale, is_causal, causal_offset, *extras[:5])
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


# The kernels that read packed sequences themselves (csrc/common/block_info.cuh, BlockInfo).
PACKED_KERNELS = ("prefill", "prefill_sm90")


def packed_attention(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor, max_seqlen_q,
                     max_seqlen_k, scale: float, is_causal: bool, extras=NO_EXTRAS):
    """Packed sequences (flash_attn_varlen_func's layout, validated: q (total_q, Hq, D), k/v
    (total_k, Hkv, D), cu_seqlens int32 (n + 1,)) in one call of the op, with no padding copies,
    when the kernel chosen for the packed rows (auto, or use_kernel) reads them itself
    (PACKED_KERNELS). Causal is bottom-right within each sequence. Returns (out (total_q, Hq, D),
    lse (Hq, total_q)), or None when another kernel would serve the call: the caller pads."""
    qv, kv, vv = q[None].transpose(1, 2), k[None].transpose(1, 2), v[None].transpose(1, 2)   # (1, H, total, D)
    kernel = backends.resolve(qv, kv, vv, None)
    if kernel not in PACKED_KERNELS or not q.is_cuda:
        return None
    _ext.load()
    scale = float(scale)
    # flash_attn takes max_seqlen_* as upper bounds: no sequence is longer than its total either.
    max_seqlen_q, max_seqlen_k = torch.sym_min(max_seqlen_q, q.shape[0]), torch.sym_min(max_seqlen_k, k.shape[0])
    ex = ((-1, -1, 0.0, None, None) if extras is NO_EXTRAS else tuple(extras)[:5]) + (
        cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    offset = max_seqlen_k - max_seqlen_q
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        out, lse = _AttentionFn.apply(qv, kv, vv, None, None, scale, is_causal, offset, kernel, ex)
    else:
        out, lse = _forward(qv, kv, vv, None, None, scale, is_causal, offset, kernel, ex)
    return out[0].transpose(0, 1), lse[0]


def paged_attention(q: Tensor, k_pages: Tensor, v_pages: Tensor, block_table: Tensor, seqlens_k: Tensor, scale: float,
                    is_causal: bool, causal_offset, extras=NO_EXTRAS, kernel: str = "decode"):
    """A paged cache read in place by a CUDA kernel: "decode" (q (B, Hq, L, D) with L <= 16) or
    "prefill" (any L: chunked prefill); k_pages / v_pages (num_blocks, Hkv, page_size, D) views,
    block_table int32 (B, max_blocks), seqlens_k int32 (B,); validated by the caller
    (flash_attn_with_kvcache). Returns (out, lse) as attention_forward does."""
    _ext.load()
    ex = (-1, -1, 0.0, None, None) if extras is NO_EXTRAS else tuple(extras)[:5]
    ex = ex + (None, None, 0, 0, block_table)
    scale = float(scale)
    if torch.is_grad_enabled() and (q.requires_grad or k_pages.requires_grad or v_pages.requires_grad):
        return _AttentionFn.apply(q, k_pages, v_pages, None, seqlens_k, scale, is_causal, causal_offset, kernel, ex)
    return _forward(q, k_pages, v_pages, None, seqlens_k, scale, is_causal, causal_offset, kernel, ex)