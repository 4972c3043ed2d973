"""Attention in plain PyTorch: the CPU path and the references the tests compare against.

- `tiled_attention`: the FlashAttention algorithm itself, written with tensor ops: K/V in blocks,
  a running row max `m` and row sum `l` in fp32, the accumulator rescaled as the max grows, one
  divide at the end. Its extra memory is O(L x block_size), never the (L, S) score matrix. It is
  what CPU tensors run, and what `use_kernel("reference")` forces on any device.
- `naive_attention`: scores, softmax, weighted sum, materialised in float64. Slow and obviously
  right; tests measure every kernel against it.

Both take (B, H, L, D) tensors with flashmin's semantics (docs/internals.md): query head h reads
kv head h // (Hq // Hkv); a bool mask is True where attention is allowed, a float mask is added to
the scaled scores; with `is_causal`, query i sees key j iff j <= i + causal_offset; a query row that
sees no key gets zeros and lse = -inf.

The options of flash_attn, all relative to the diagonal d_i = i + causal_offset (+ seqlens_k[b] - S
with per-batch lengths): `window` (left, right), -1 = no limit: key j is seen only if
d_i - left <= j <= d_i + right; `softcap` > 0: a scaled score s becomes softcap * tanh(s / softcap)
before the bias and masks; `alibi_slopes` (Hq,) or (B, Hq): -slope * |j - d_i| added to the scaled
score; `sinks` (Hq,): one more logit per head in the denominator, with no value (a row that sees no
key then gets zeros and lse = its sink).
"""
import math
from typing import Optional

import torch
from torch import Tensor


def _causal_hidden(L: int, S: int, causal_offset: int, j0: int, j1: int, device) -> Tensor:
    """(L, j1 - j0) bool: True where key j (in [j0, j1)) lies above query i's causal limit."""
    i = torch.arange(L, device=device).unsqueeze(1)           # (L, 1)
    j = torch.arange(j0, j1, device=device).unsqueeze(0)      # (1, n)
    return j > i + causal_offset                               # (L, n)


def _hidden_by_lengths(seqlens_k: Tensor, L: int, S: int, is_causal: bool, causal_offset: int,
                       j0: int, j1: int) -> Tensor:
    """(B, 1, 1, L, n) bool for per-batch key lengths: keys past seqlens_k[b] are hidden, and the
    causal limit moves with each batch's length (offset + seqlens_k[b] - S)."""
    lens = seqlens_k.to(torch.int64).view(-1, 1, 1, 1, 1)                      # (B, 1, 1, 1, 1)
    j = torch.arange(j0, j1, device=seqlens_k.device).view(1, 1, 1, 1, -1)   # (1, 1, 1, 1, n)
    hidden = j >= lens
    if is_causal:
        i = torch.arange(L, device=seqlens_k.device).view(1, 1, 1, -1, 1)    # (1, 1, 1, L, 1)
        hidden = hidden | (j > i + causal_offset + lens - S)
    return hidden


def _zero_past_lengths(v: Tensor, seqlens_k: Tensor, j0: int) -> Tensor:
    """v (B, Hkv, 1 or G, n, D) with rows j0 + r >= seqlens_k[b] zeroed: their weight is 0, but
    0 * NaN is NaN, and a KV cache's unused slots are uninitialised memory."""
    n = v.size(-2)
    past = torch.arange(j0, j0 + n, device=v.device).view(1, 1, 1, n, 1) >= seqlens_k.to(torch.int64).view(-1, 1, 1, 1, 1)
    return v.masked_fill(past, 0.0)


def _relative_to_diagonal(L: int, S: int, causal_offset: int, j0: int, j1: int, device,
                          seqlens_k: Optional[Tensor]) -> Tensor:
    """j - d_i for keys j in [j0, j1): (L, n), or (B, 1, 1, L, n) with per-batch key lengths."""
    i = torch.arange(L, device=device).unsqueeze(1)
    j = torch.arange(j0, j1, device=device).unsqueeze(0)
    rel = j - i - causal_offset                                     # (L, n)
    if seqlens_k is not None:
        rel = rel - (seqlens_k.to(torch.int64).view(-1, 1, 1, 1, 1) - S)
    return rel


def _apply_options(s: Tensor, rel, window, softcap: float, alibi) -> Tensor:
    """Softcap, ALiBi and the window on scores s (..., L, n); rel = j - d_i broadcastable to s;
    alibi: None or slopes broadcastable to (B, Hkv, G, 1, 1)."""
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if alibi is not None:
        s = s - alibi * rel.abs().to(s.dtype)
    left, right = window
    if left >= 0:
        s = s.masked_fill(rel < -left, -math.inf)
    if right >= 0:
        s = s.masked_fill(rel > right, -math.inf)
    return s


def _alibi_view(alibi_slopes: Optional[Tensor], B: int, Hkv: int, G: int, dtype) -> Optional[Tensor]:
    if alibi_slopes is None:
        return None
    a = alibi_slopes.to(dtype)
    a = a.view(1, Hkv, G, 1, 1) if a.dim() == 1 else a.view(B, Hkv, G, 1, 1)
    return a


def tiled_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], scale: float,
                    is_causal: bool, causal_offset: int, block_size: int = 128,
                    seqlens_k: Optional[Tensor] = None, window=(-1, -1), softcap: float = 0.0,
                    alibi_slopes: Optional[Tensor] = None, sinks: Optional[Tensor] = None):
    """Online-softmax attention over key blocks. Returns (out, lse).

    q: (B, Hq, L, D); k, v: (B, Hkv, S, D); attn_mask: None or broadcastable to (B, Hq, L, S);
    seqlens_k: None or (B,) integer key counts per batch (keys past them are ignored).
    window, softcap, alibi_slopes, sinks: flash_attn's options (module docstring); key blocks that
    no query row's window reaches are skipped.
    out: (B, Hq, L, D) in q's dtype, laid out in memory as (B, L, Hq, D) like the CUDA kernels;
    lse: (B, Hq, L) float32 (natural log). Arithmetic in float32 (float64 for float64 inputs).
    """
    acc_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    B, Hq, L, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    G = Hq // Hkv                                              # query heads per kv head
    if attn_mask is not None:
        attn_mask = attn_mask.expand(B, Hq, L, S).unflatten(1, (Hkv, G))   # (B, Hkv, G, L, S), a view
    qs = q.to(acc_dtype).unflatten(1, (Hkv, G)) * scale         # (B, Hkv, G, L, D)
    m = torch.full((B, Hkv, G, L, 1), -math.inf, dtype=acc_dtype, device=q.device)  # running max
    l = torch.zeros((B, Hkv, G, L, 1), dtype=acc_dtype, device=q.device)            # running sum
    acc = torch.zeros((B, Hkv, G, L, D), dtype=acc_dtype, device=q.device)          # unnormalised O
    if sinks is not None:   # the sink logit starts the running max and sum: exp(sink - m) = 1
        sk = sinks.to(acc_dtype).view(1, Hkv, G, 1, 1).expand(B, Hkv, G, L, 1)
        m = sk.clone()
        l = torch.where(sk > -math.inf, torch.ones_like(sk), torch.zeros_like(sk))
    left, right = (int(window[0]), int(window[1]))
    options = left >= 0 or right >= 0 or softcap > 0 or alibi_slopes is not None
    alibi = _alibi_view(alibi_slopes, B, Hkv, G, acc_dtype)

    n_end = S if not is_causal or seqlens_k is not None else max(0, min(S, L + causal_offset))  # later keys: unseen
    n_begin = 0
    if seqlens_k is None:   # keys outside every row's window: skipped, not masked
        if right >= 0:
            n_end = max(0, min(n_end, L - 1 + causal_offset + right + 1))
        if left >= 0:
            n_begin = max(0, min(n_end, causal_offset - left))
    for j0 in range(n_begin, n_end, block_size):
        j1 = min(n_end, j0 + block_size)
        kj = k[:, :, j0:j1].to(acc_dtype).unsqueeze(2)          # (B, Hkv, 1, n, D)
        vj = v[:, :, j0:j1].to(acc_dtype).unsqueeze(2)          # (B, Hkv, 1, n, D)
        s = qs @ kj.transpose(-1, -2)                           # (B, Hkv, G, L, n)
        if options:
            rel = _relative_to_diagonal(L, S, causal_offset, j0, j1, q.device, seqlens_k)
            s = _apply_options(s, rel, (left, right), softcap, alibi)
        if attn_mask is not None:
            mj = attn_mask[..., j0:j1]                          # (B, Hkv, G, L, n), still a view
            s = s.masked_fill(~mj, -math.inf) if mj.dtype == torch.bool else s + mj.to(acc_dtype)
        if seqlens_k is not None:
            s = s.masked_fill(_hidden_by_lengths(seqlens_k, L, S, is_causal, causal_offset, j0, j1), -math.inf)
            vj = _zero_past_lengths(vj, seqlens_k, j0)  # unused cache slots may hold anything, NaN too
        elif is_causal:
            s = s.masked_fill(_causal_hidden(L, S, causal_offset, j0, j1, q.device), -math.inf)
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))  # (B, Hkv, G, L, 1)
        m_ref = m_new.masked_fill(m_new == -math.inf, 0.0)      # nothing visible yet: p = 0, not NaN
        alpha = torch.exp(m - m_ref)                            # rescales the old state
        p = torch.exp(s - m_ref)                                # (B, Hkv, G, L, n)
        l = alpha * l + p.sum(dim=-1, keepdim=True)
        acc = alpha * acc + p @ vj
        m = m_new

    seen = l > 0
    acc = acc / torch.where(seen, l, torch.ones_like(l))        # rows that saw nothing stay 0
    lse = torch.where(seen, m + torch.log(l), torch.full_like(l, -math.inf))
    out = torch.empty((B, L, Hq, D), dtype=q.dtype, device=q.device).transpose(1, 2)  # (B, Hq, L, D)
    out.copy_(acc.flatten(1, 2))
    return out, lse.flatten(1, 2).squeeze(-1).to(torch.float32)


def naive_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None,
                    scale: Optional[float] = None, is_causal: bool = False, causal_offset: int = 0,
                    return_lse: bool = False, seqlens_k: Optional[Tensor] = None, window=(-1, -1),
                    softcap: float = 0.0, alibi_slopes: Optional[Tensor] = None, sinks: Optional[Tensor] = None):
    """softmax(scale * q k^T + mask) v, materialised in float64. (B, H, L, D) in, float64 out.

    Same semantics as the kernels (GQA by head counts, bool/float masks broadcast to (B, Hq, L, S),
    causal with `causal_offset`, per-batch key counts `seqlens_k`, rows that see no key give zeros
    and lse = -inf; window, softcap, alibi_slopes, sinks as in the module docstring).
    """
    B, Hq, L, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    q64, k64, v64 = (t.to(torch.float64) for t in (q, k, v))
    k64 = k64.repeat_interleave(Hq // Hkv, dim=1)               # (B, Hq, S, D)
    v64 = v64.repeat_interleave(Hq // Hkv, dim=1)               # (B, Hq, S, D)
    s = (q64 @ k64.transpose(-1, -2)) * scale                   # (B, Hq, L, S)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(L, device=q.device).view(1, 1, L, 1)
    j = torch.arange(S, device=q.device).view(1, 1, 1, S)
    diag = i + causal_offset                                    # (1, 1, L, 1): d_i
    if seqlens_k is not None:
        diag = diag + (seqlens_k.to(torch.int64).view(-1, 1, 1, 1) - S)
    if alibi_slopes is not None:
        slopes = alibi_slopes.to(torch.float64)
        slopes = slopes.view(1, Hq, 1, 1) if slopes.dim() == 1 else slopes.view(B, Hq, 1, 1)
        s = s - slopes * (j - diag).abs().to(torch.float64)
    if window[0] >= 0:
        s = s.masked_fill(j < diag - window[0], -math.inf)
    if window[1] >= 0:
        s = s.masked_fill(j > diag + window[1], -math.inf)
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else s + attn_mask.to(torch.float64)
    if seqlens_k is not None:
        s = s.masked_fill(_hidden_by_lengths(seqlens_k, L, S, is_causal, causal_offset, 0, S).squeeze(1), -math.inf)
        v64 = _zero_past_lengths(v64.unsqueeze(2), seqlens_k, 0).squeeze(2)
    elif is_causal:
        s = s.masked_fill(_causal_hidden(L, S, causal_offset, 0, S, q.device), -math.inf)
    if sinks is not None:   # one more column per head: the sink logit, with a zero value row
        s = torch.cat([s, sinks.to(torch.float64).view(1, Hq, 1, 1).expand(B, Hq, L, 1)], dim=-1)
        v64 = torch.cat([v64, v64.new_zeros(B, Hq, 1, D)], dim=-2)
        S = S + 1
    m = s.amax(dim=-1, keepdim=True) if S > 0 else s.new_full((B, Hq, L, 1), -math.inf)
    m = m.masked_fill(m == -math.inf, 0.0)                      # (B, Hq, L, 1)
    p = torch.exp(s - m)                                        # (B, Hq, L, S)
    l = p.sum(dim=-1, keepdim=True)                             # (B, Hq, L, 1)
    out = (p @ v64) / torch.where(l > 0, l, torch.ones_like(l))
    if not return_lse:
        return out
    return out, (m + torch.log(l)).squeeze(-1)                  # log(0) = -inf for empty rows
