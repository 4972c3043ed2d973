"""FlashAttention-2's functions, drop-in: flash_attn 2.8's flash_attn_func, flash_attn_with_kvcache
and flash_attn_varlen_func with the same arguments in the same order, forward only, over flashmin's
one op (ops.py). Their options are read as flash_attn reads them (_flash_options.py); flashmin's
own options are keyword-only.

causal is aligned bottom-right (query i's diagonal key is i + Sk - Sq): the last query sees every
key, what a KV cache needs.
"""
import math
import numbers
from typing import Optional

import torch
from torch import Tensor

from ._checks import check_indexed_cache, check_qkv, describe, finite_scale, integer, not_a_bool
from ._flash_options import (NO_WINDOW as _NO_WINDOW, check_cu_seqlens, check_dropout, check_kvcache_options,
                             flash_options, host_seqlens, check_leftpad, check_seqlens_tensor, leftpad_shift,
                             rotate)
from ._kvcache_cuda import kvcache_paged, kvcache_rows
from .ops import NO_EXTRAS, attention_forward, packed_attention

_is_compiling = torch.compiler.is_compiling


def _capturing(t: Tensor) -> bool:
    """True while a CUDA graph is being captured on the current stream: reading a tensor's values
    back to the host is not allowed then (and a replay would not repeat the check), so the length
    checks that read them are skipped, as under torch.compile."""
    return t.is_cuda and torch.cuda.is_current_stream_capturing()

def flash_attn_func(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, softmax_scale: Optional[float] = None,
                    causal: bool = False, window_size=_NO_WINDOW, softcap: float = 0.0,
                    alibi_slopes: Optional[Tensor] = None, deterministic: bool = False,
                    return_attn_probs: bool = False, *, return_lse: bool = False):
    """Drop-in for flash_attn 2.8's flash_attn_func (same arguments, same order), forward only.

    q: (B, Sq, Hq, D); k, v: (B, Sk, Hkv, D), Hq a multiple of Hkv (GQA/MQA). causal is aligned
    bottom-right: query i sees key j iff j <= i + Sk - Sq, so the last query sees every key (what a
    KV cache needs); when Sq > Sk the first Sq - Sk queries see nothing and get zeros.
    window_size (left, right): query i sees key j only if i + Sk - Sq - left <= j <= i + Sk - Sq + right
    (-1: no limit; causal sets right = 0); softcap > 0: each scaled score s becomes
    softcap * tanh(s / softcap) before masking; alibi_slopes: float32 (Hq,) or (B, Hq), adds
    -slope * |i + Sk - Sq - j| to the scaled scores. Every kernel runs them (fused in the CUDA
    kernels: key tiles outside a window are skipped, not masked).
    dropout_p must be 0 (NotImplementedError otherwise). deterministic is accepted either way
    (flashmin's forward is deterministic; the flag concerns flash_attn's backward).
    Returns out (B, Sq, Hq, D) contiguous. With return_attn_probs, (out, softmax_lse, S_dmask) as
    flash_attn returns them for dropout_p = 0: lse (B, Hq, Sq) float32, and S_dmask an empty tensor
    (shape (0,), q's dtype): no probabilities are formed. With flashmin's keyword-only return_lse,
    (out, lse).
    """
    if causal is not True and causal is not False:
        not_a_bool("causal", causal)
    if dropout_p != 0.0:
        check_dropout(dropout_p)
    q, k, v = check_qkv(q, k, v, names=("q", "k", "v"), layout="blhd")
    qs, ks = q.shape, k.shape
    extras = NO_EXTRAS
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None:
        causal, extras = flash_options(causal, window_size, softcap, alibi_slopes, ks[1], q, qs[0], qs[2])
    scale = 1.0 / math.sqrt(qs[3]) if softmax_scale is None else finite_scale(softmax_scale, "softmax_scale")
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)   # (B, H, S, D) views
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, ks[1] - qs[1], extras=extras)
    out = out.transpose(1, 2)                                              # (B, Sq, Hq, D), contiguous
    if return_attn_probs:
        return out, lse, q.new_empty((0,))
    return (out, lse) if return_lse else out


def flash_attn_with_kvcache(q: Tensor, k_cache: Tensor, v_cache: Tensor, k: Optional[Tensor] = None,
                            v: Optional[Tensor] = None, rotary_cos: Optional[Tensor] = None,
                            rotary_sin: Optional[Tensor] = None, cache_seqlens=None,
                            cache_batch_idx: Optional[Tensor] = None, cache_leftpad: Optional[Tensor] = None,
                            block_table: Optional[Tensor] = None, softmax_scale: Optional[float] = None,
                            causal: bool = False, window_size=_NO_WINDOW, softcap: float = 0.0,
                            rotary_interleaved: bool = True, alibi_slopes: Optional[Tensor] = None,
                            num_splits: int = 0, return_softmax_lse: bool = False, *, return_lse: bool = False,
                            check_lengths: bool = True):
    """Drop-in for flash_attn 2.8's flash_attn_with_kvcache (same arguments, same order), forward
    only: decode against a KV cache.

    q: (B, Lq, Hq, D), typically Lq = 1 (or a few tokens for speculative decoding).
    k_cache, v_cache: (B, S_max, Hkv, D), Hq a multiple of Hkv.
    k, v: optional new keys/values (B, Lnew, Hkv, D), written into the caches IN PLACE at positions
    cache_seqlens[b] .. cache_seqlens[b] + Lnew - 1 before attending.
    cache_seqlens: an int (a Python or numpy integer, not a bool) or an int32/int64 tensor (B,): keys
    already in each batch row's cache (None: the whole cache, S_max). Batch row b then attends to its
    first cache_seqlens[b] + Lnew keys.
    causal: aligned bottom-right per batch row: query i sees key j iff j <= i + len_b - Lq.
    window_size / softcap / alibi_slopes as in flash_attn_func, the diagonal at each row's length
    (query i's is key i + len_b - Lq); num_splits = 0 (flashmin
    plans its own splits); rotary_interleaved either way (it only matters with rotary_cos/sin).
    block_table: a paged cache; k_cache, v_cache are then a pool (num_blocks, page_block_size, Hkv, D)
    and block_table (B, max_blocks_per_seq) int32 says where row b's key j lives: page
    block_table[b, j // page_block_size], offset j % page_block_size. New keys are written into those
    pages in place; they may not land in a slot that another row (or another position of the same
    row) also references. On CUDA the kernels read the pages in place (no gathered copy) for a
    power-of-two page_block_size of 16 or more, fp16/bf16: the decode kernel up to 16 queries
    (head dim up to 128), the sm80 prefill kernel for longer queries (chunked prefill, head dims up
    to 256), with kernel "auto", "decode" or "prefill". On the CPU any page_block_size >= 1.
    cache_batch_idx: (B,) int32/int64, row b of q uses cache row cache_batch_idx[b] of a
    (B_cache, S_max, Hkv, D) cache (cache_seqlens stays indexed by q's row b); repeated indices are
    accepted without new keys only. Not together with block_table (as in flash_attn). On CUDA every
    kernel reads the chosen rows in place.
    rotary_cos, rotary_sin (seqlen_ro >= the cache's keys, rotary_dim / 2), q's dtype: q and the new k
    rotated as flash_attn 2.8 does (rotary_interleaved: GPT-J pairs, else GPT-NeoX halves; new key j
    at position cache_seqlens[b] + j, query i at cache_seqlens[b] + i with causal or a local window,
    else at cache_seqlens[b]), by PyTorch ops before the attention, on any device; the cache receives
    the rotated keys. cache_leftpad: (B,) int32, row b's cache starts at that key (the keys before it
    are never read; positions stay absolute); on CUDA every kernel starts each row there in place;
    not with block_table on CUDA tensors (as in flash_attn).
    A paged cache the CUDA kernels cannot read in place, and any other value flashmin does not
    implement, raise NotImplementedError naming the argument, before the cache is touched.
    check_lengths (flashmin, keyword-only): verify 0 <= cache_seqlens and cache_seqlens + Lnew <= S_max;
    for a tensor this reads two numbers back to the host (a synchronisation); pass False to skip it in
    a hot loop. Under torch.compile, and while a CUDA graph is captured, a tensor's lengths are not
    checked (reading them would break the graph). The decode kernel's plan depends on shapes only
    (the cache's capacity, never the lengths' values), so a captured step replays correctly with
    new values in cache_seqlens.
    Returns out (B, Lq, Hq, D); with return_softmax_lse (or flashmin's return_lse), (out, lse) with
    lse (B, Hq, Lq) float32.
    """
    if causal is not True and causal is not False:
        not_a_bool("causal", causal)
    if (rotary_cos is not None or rotary_sin is not None or cache_batch_idx is not None or cache_leftpad is not None
            or block_table is not None or num_splits != 0 or rotary_interleaved is not True):
        check_kvcache_options(num_splits, rotary_interleaved)
        if cache_leftpad is not None:
            check_leftpad(cache_leftpad, q, cache_seqlens, check_lengths)
        if rotary_cos is not None or rotary_sin is not None:   # q and the new k rotated, then used as given
            q, k = rotate(q, k, k_cache, block_table, rotary_cos, rotary_sin, cache_seqlens, rotary_interleaved,
                          causal, window_size)
            rotary_cos = rotary_sin = None
        if block_table is not None and cache_batch_idx is None and cache_leftpad is None:
            res = kvcache_paged(q, k_cache, v_cache, k, v, cache_seqlens, block_table, softmax_scale, causal,
                                window_size, softcap, alibi_slopes, check_lengths)
            if res is not None:
                return res if return_softmax_lse or return_lse else res[0]
        if block_table is None and (cache_batch_idx is not None or cache_leftpad is not None):
            res = kvcache_rows(q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, cache_leftpad, softmax_scale,
                               causal, window_size, softcap, alibi_slopes, check_lengths)
            if res is not None:
                return res if return_softmax_lse or return_lse else res[0]
        if block_table is not None and cache_leftpad is not None and isinstance(q, Tensor) and q.is_cuda:
            raise NotImplementedError(f"cache_leftpad={describe(cache_leftpad)} with block_table on CUDA tensors: as "
                                      "in flash_attn, a paged cache and left padding do not go together on the GPU "
                                      "(CPU tensors run it)")
        if block_table is not None or cache_batch_idx is not None:
            return _kvcache_indexed(q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, block_table,
                                    dict(softmax_scale=softmax_scale, causal=causal, window_size=window_size,
                                         softcap=softcap, alibi_slopes=alibi_slopes, cache_leftpad=cache_leftpad,
                                         return_lse=return_softmax_lse or return_lse, check_lengths=False))
    q, kc, vc = check_qkv(q, k_cache, v_cache, names=("q", "k_cache", "v_cache"), layout="blhd")
    if k is not None and (kc is not k_cache or vc is not v_cache):
        # check_qkv copied a cache with a strided last dim: the new keys would land in the copy
        raise ValueError(f"k_cache.stride(-1)={k_cache.stride(-1)}, v_cache.stride(-1)={v_cache.stride(-1)}: with "
                         "k/v the caches are written in place, so their last dim must be contiguous")
    k_cache, v_cache = kc, vc
    B, S_max, Hkv, D = k_cache.shape
    extras = NO_EXTRAS
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None:
        causal, extras = flash_options(causal, window_size, softcap, alibi_slopes, S_max, q, B, q.shape[2])
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
        if type(cache_seqlens) is int:                      # the common case first: no ABC checks
            pass
        elif not isinstance(cache_seqlens, Tensor):
            if isinstance(cache_seqlens, bool):
                raise TypeError(f"cache_seqlens={cache_seqlens} is a bool; pass an int or an int32/int64 tensor "
                                "of shape (B,)")
            if not isinstance(cache_seqlens, (numbers.Integral, torch.SymInt)):
                raise TypeError(f"cache_seqlens must be an int or a tensor; got {type(cache_seqlens).__name__}")
            if not isinstance(cache_seqlens, torch.SymInt):
                cache_seqlens = int(cache_seqlens)          # a numpy integer
        if not isinstance(cache_seqlens, Tensor):
            if check_lengths and not 0 <= cache_seqlens <= S_max - n_new:
                raise ValueError(f"cache_seqlens={cache_seqlens} with {n_new} new keys does not fit the cache "
                                 f"(k_cache.size(1)={S_max})")
            check_lengths = False                           # checked on the host: no device read-back
            cache_seqlens = torch.full((B,), cache_seqlens, dtype=torch.int32, device=q.device)
        check_seqlens_tensor(cache_seqlens, B, q.device)
        if check_lengths and B > 0 and not _is_compiling() and not _capturing(q):
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

    scale = 1.0 / math.sqrt(D) if softmax_scale is None else finite_scale(softmax_scale, "softmax_scale")
    qt, kt, vt = q.transpose(1, 2), k_cache.transpose(1, 2), v_cache.transpose(1, 2)   # (B, H, S, D) views
    if cache_leftpad is not None:   # row b's keys start at cache_leftpad[b]: its rows shifted to the front
        kt, vt, lens = leftpad_shift(cache_leftpad, kt, vt, lens, S_max)
    out, lse = attention_forward(qt, kt, vt, None, scale, causal, S_max - q.shape[1], seqlens_k=lens, extras=extras)
    out = out.transpose(1, 2)                                                         # (B, Lq, Hq, D)
    return (out, lse) if return_softmax_lse or return_lse else out


def flash_attn_varlen_func(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                           max_seqlen_q: int, max_seqlen_k: int, dropout_p: float = 0.0,
                           softmax_scale: Optional[float] = None, causal: bool = False, window_size=_NO_WINDOW,
                           softcap: float = 0.0, alibi_slopes: Optional[Tensor] = None, deterministic: bool = False,
                           return_attn_probs: bool = False, block_table: Optional[Tensor] = None, *,
                           check_lengths: bool = True):
    """Drop-in for flash_attn 2.8's flash_attn_varlen_func (same arguments, same order), forward only:
    a batch of sequences of different lengths packed along the token dim.

    q: (total_q, Hq, D); k, v: (total_k, Hkv, D), Hq a multiple of Hkv; cu_seqlens_q, cu_seqlens_k:
    int32 (B + 1,), sequence b being q[cu_seqlens_q[b]:cu_seqlens_q[b + 1]] against
    k[cu_seqlens_k[b]:cu_seqlens_k[b + 1]]; max_seqlen_q / max_seqlen_k: ints, at least the longest
    sequence. causal is aligned bottom-right within each sequence. The other options as in
    flash_attn_func; block_table (paged keys) raises NotImplementedError.

    Where the kernel chosen for the call reads packed rows itself (the prefill kernels,
    ops.PACKED_KERNELS: fp16/bf16 on CUDA), one call of the op runs every sequence in place, with no
    copies. Otherwise (the CPU, fp32, the teaching kernel, a forced decode kernel) the tokens are
    gathered into padded (B, max_seqlen, H, D) copies (queries right-aligned, so that one causal
    offset serves every sequence; keys cut per sequence by the op's per-batch key lengths), one call
    of the op runs every sequence, and the rows are gathered back: copies of q, k, v and out padded
    to the longest sequence, and compute over that padding. Neither reads anything back to the host
    except for check_lengths (flashmin, keyword-only: one read-back that checks cu_seqlens against
    the totals and the max_seqlen arguments; skipped under torch.compile).

    Returns out (total_q, Hq, D) contiguous; with return_attn_probs (out, softmax_lse, S_dmask) with
    lse (Hq, total_q) float32 and S_dmask an empty tensor, as flash_attn returns them for dropout_p = 0.
    Query rows past cu_seqlens_q[-1] get zeros.
    """
    if causal is not True and causal is not False:
        not_a_bool("causal", causal)
    if dropout_p != 0.0:
        check_dropout(dropout_p)
    if block_table is not None:
        raise NotImplementedError(f"block_table={describe(block_table)}: paged keys are not implemented in flashmin "
                                  "yet")
    for t, n in ((q, "q"), (k, "k"), (v, "v")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{n} must be a torch.Tensor; got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"{n}.dim()={t.dim()} must be 3: (total, H, D); got {n}.shape={tuple(t.shape)}")
    if k.size(2) != q.size(2):
        raise ValueError(f"k.size(2)={k.size(2)} must equal q.size(2)={q.size(2)} (head dim)")
    if k.size(1) == 0 or q.size(1) % k.size(1) != 0:
        raise ValueError(f"q.size(1)={q.size(1)} query heads must be a positive multiple of k.size(1)={k.size(1)} "
                         "kv heads")
    qb, kb, vb = check_qkv(q[None], k[None], v[None], names=("q", "k", "v"), layout="blhd")   # (1, total, H, D)
    q, k, v = qb[0], kb[0], vb[0]
    total_q, Hq, D = q.shape
    total_k, Hkv = k.shape[0], k.shape[1]
    for t, n in ((cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{n} must be an int32 tensor of shape (B + 1,); got {type(t).__name__}")
        if t.dtype != torch.int32 or t.dim() != 1 or t.numel() < 1:
            raise ValueError(f"{n} must be an int32 tensor of shape (B + 1,); got dtype={t.dtype}, "
                             f"shape={tuple(t.shape)}")
        if t.device != q.device:
            raise ValueError(f"{n}.device={t.device} must equal q.device={q.device}")
    if cu_seqlens_k.shape != cu_seqlens_q.shape:
        raise ValueError(f"cu_seqlens_k.shape={tuple(cu_seqlens_k.shape)} must equal "
                         f"cu_seqlens_q.shape={tuple(cu_seqlens_q.shape)} (one entry per sequence, plus one)")
    Lmax, Smax = integer(max_seqlen_q, "max_seqlen_q"), integer(max_seqlen_k, "max_seqlen_k")
    if Lmax < 0 or Smax < 0:
        raise ValueError(f"max_seqlen_q={Lmax}, max_seqlen_k={Smax} must not be negative")
    B = cu_seqlens_q.numel() - 1
    extras = NO_EXTRAS
    if (window_size is not _NO_WINDOW and window_size != _NO_WINDOW) or softcap != 0.0 or alibi_slopes is not None:
        causal, extras = flash_options(causal, window_size, softcap, alibi_slopes, Smax, q, B, Hq)
    scale = 1.0 / math.sqrt(D) if softmax_scale is None else finite_scale(softmax_scale, "softmax_scale")
    if check_lengths and not _is_compiling() and not _capturing(q):
        check_cu_seqlens(cu_seqlens_q, cu_seqlens_k, total_q, total_k, Lmax, Smax)

    if B > 0 and total_q > 0 and Lmax > 0:
        packed = packed_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, Lmax, Smax, scale, causal, extras)
        if packed is not None:
            out, lse = packed
            return (out, lse, q.new_empty((0,))) if return_attn_probs else out
    out = q.new_zeros((total_q, Hq, D))
    lse = torch.full((Hq, total_q), -math.inf, dtype=torch.float32, device=q.device)
    if B == 0 or total_q == 0 or Lmax == 0:
        return (out, lse, q.new_empty((0,))) if return_attn_probs else out
    dev = q.device
    cu_q, cu_k = cu_seqlens_q.to(torch.int64), cu_seqlens_k.to(torch.int64)
    len_q, len_k = cu_q[1:] - cu_q[:-1], cu_k[1:] - cu_k[:-1]                   # (B,)
    # Padded copies: sequence b's queries at rows Lmax - len_q[b] .. Lmax - 1 (right-aligned), its keys
    # at rows 0 .. len_k[b] - 1. Padding rows read other tokens (finite values) and are never used.
    rows_q = torch.arange(Lmax, device=dev)                                      # (Lmax,)
    src_q = (cu_q[:-1, None] - (Lmax - len_q)[:, None] + rows_q).clamp(0, total_q - 1)   # (B, Lmax)
    qp = q[src_q]                                                                # (B, Lmax, Hq, D)
    if total_k > 0:
        src_k = (cu_k[:-1, None] + torch.arange(Smax, device=dev)).clamp(0, total_k - 1)  # (B, Smax)
        kp, vp = k[src_k], v[src_k]                                              # (B, Smax, Hkv, D)
    else:
        kp = vp = k.new_zeros((B, Smax, Hkv, D))
    # Query row r of sequence b is its query r - (Lmax - len_q[b]): it sees key j iff
    # j <= r - Lmax + len_k[b] = (Smax - Lmax) + len_k[b] - Smax + r, the op's per-batch causal offset.
    o, l = attention_forward(qp.transpose(1, 2), kp.transpose(1, 2), vp.transpose(1, 2), None, scale, causal,
                             Smax - Lmax, seqlens_k=len_k.to(torch.int32), extras=extras)   # (B, Hq, Lmax, D), (B, Hq, Lmax)
    # Back to the packed rows: token t of sequence b (cu_q[b] <= t < cu_q[b + 1]) is padded row
    # t - cu_q[b] + Lmax - len_q[b] of batch b.
    t = torch.arange(total_q, device=dev)                                        # (total_q,)
    b = torch.searchsorted(cu_q[1:], t, right=True).clamp(max=B - 1)             # (total_q,)
    flat = b * Lmax + (t - cu_q[b] + Lmax - len_q[b]).clamp(0, Lmax - 1)         # (total_q,)
    inside = (t < cu_q[-1]).view(-1, 1)                                          # rows past the last sequence: 0
    out = o.transpose(1, 2).reshape(B * Lmax, Hq, D)[flat]                      # (total_q, Hq, D)
    out = torch.where(inside.unsqueeze(-1), out, out.new_zeros(()))
    lse = l.transpose(0, 1).reshape(Hq, B * Lmax)[:, flat]                      # (Hq, total_q)
    lse = torch.where(inside.view(1, -1), lse, lse.new_full((), -math.inf))
    return (out, lse, q.new_empty((0,))) if return_attn_probs else out


def _kvcache_indexed(q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, block_table, options):
    """flash_attn_with_kvcache with block_table or cache_batch_idx, on CPU tensors: gather each q row's
    cache into a contiguous (B, S, Hkv, D) copy, run the plain call on the copy (same checks, causal
    alignment and per-row lengths), then write the new keys into the caller's pages or rows."""
    name = "block_table" if block_table is not None else "cache_batch_idx"
    given = block_table if block_table is not None else cache_batch_idx
    for t in (q, k_cache, v_cache, given):
        if isinstance(t, Tensor) and t.device.type != "cpu":
            raise NotImplementedError(
                f"{name}={describe(given)} on {t.device.type} tensors: "
                + ("block_table (a paged KV cache) is read in place on CUDA for fp16/bf16, power-of-two pages "
                   "of 16 keys or more, by the decode kernel (up to 16 queries, head dim up to 128) or the sm80 "
                   "prefill kernel (longer queries), with kernel auto, decode or prefill; any other paged call "
                   "is implemented for CPU tensors only so far" if block_table is not None else
                   "cache_batch_idx (cache rows chosen by index) is read in place on CUDA when the caches' last "
                   "dim is contiguous and their dtype is q's; any other such call is implemented for CPU tensors "
                   "only so far"))
    if block_table is not None and cache_batch_idx is not None:
        raise ValueError(f"cache_batch_idx={describe(cache_batch_idx)} cannot be given with block_table="
                         f"{describe(block_table)} (as in flash_attn): block_table already chooses each row's pages")
    if k is not None and cache_seqlens is None:
        raise ValueError("cache_seqlens is required with k/v: it says where the new keys go")
    B, N, P, M, n_new = check_indexed_cache(q, k_cache, v_cache, k, block_table, cache_batch_idx)
    S = M * P if block_table is not None else k_cache.size(1)
    lens = host_seqlens(cache_seqlens, B, S, q.device)
    totals = lens + n_new
    if B > 0:
        lo, hi = int(lens.min()), int(totals.max())
        if lo < 0 or hi > S:
            where = (f"block_table.size(1)={M} pages of page_block_size={P} keys: {S} keys per row"
                     if block_table is not None else f"k_cache.size(1)={S}")
            raise ValueError(f"cache_seqlens must lie in [0, {S - n_new}] ({where}, {n_new} new keys); got values "
                             f"from {lo} to {hi - n_new}")
    if block_table is not None:
        tbl = block_table.to(torch.int64)
        used = torch.arange(M) < ((totals + P - 1) // P).unsqueeze(1)                    # (B, M) pages read
        bad = used & ((tbl < 0) | (tbl >= N))
        if bad.any():
            b, j = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"block_table[{b}, {j}]={int(tbl[b, j])} is not a page of k_cache (k_cache.size(0)={N} "
                             f"pages): row {b} holds {int(totals[b])} keys ({int(lens[b])} cached + {n_new} new), "
                             f"so block_table[{b}, :{int(used[b].sum())}] must lie in [0, {N})")
        safe = torch.where(used, tbl, 0)
        pos = torch.arange(S)
        if n_new > 0:                                                  # the slots written must be nobody else's
            slot = (safe.unsqueeze(2) * P + torch.arange(P)).reshape(B, S)              # (B, S) flat pool slots
            valid = pos < totals.unsqueeze(1)
            written = valid & (pos >= lens.unsqueeze(1))
            counts = torch.bincount(slot[valid], minlength=N * P)
            shared = written & (counts[slot] > 1)
            if shared.any():
                b, j = (int(i) for i in shared.nonzero()[0])
                raise ValueError(f"block_table: row {b}'s new key at position {j} would be written to page "
                                 f"{int(safe[b, j // P])}, offset {j % P}, which another row or position also "
                                 "references; new keys must go to slots that only their own row holds")
        if N == 0:
            k_rows = k_cache.new_zeros(B, S, *k_cache.shape[2:])
            v_rows = v_cache.new_zeros(B, S, *v_cache.shape[2:])
        else:
            k_rows = k_cache[safe].reshape(B, S, *k_cache.shape[2:])    # (B, M, P, Hkv, D) -> (B, S, Hkv, D)
            v_rows = v_cache[safe].reshape(B, S, *v_cache.shape[2:])
        new_pos = lens.unsqueeze(1) + torch.arange(n_new)                                  # (B, Lnew)
        where = (safe.gather(1, new_pos // P), new_pos % P) if n_new > 0 else None
    else:
        idx = cache_batch_idx.to(torch.int64)
        k_rows, v_rows = k_cache.index_select(0, idx), v_cache.index_select(0, idx)    # (B, S, Hkv, D) copies
        if n_new > 0:
            new_pos = lens.unsqueeze(1) + torch.arange(n_new)
            where = (idx.unsqueeze(1).expand(B, n_new), new_pos)
    res = flash_attn_with_kvcache(q, k_rows, v_rows, k, v, cache_seqlens=cache_seqlens, **options)
    if n_new > 0:                                      # the plain call checked k and v: write them back
        k_cache.index_put_(where, k)
        v_cache.index_put_(where, v)
    return res
