// common/softmax.cuh: the online softmax on MMA accumulator slices, and masking.
// Shared by every tensor-core kernel (sm80 prefill, decode, sm90 prefill): each holds a 16-row slice
// of S in the m16n8 accumulator layout (wgmma's m64 accumulators are four such slices, one per warp).
#pragma once

#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/ptx.cuh"

namespace flashmin {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float quad_max(float x) {   // over the 4 lanes that share a row
    x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffff, x, 1);
    return x + __shfl_xor_sync(0xffffffff, x, 2);
}

// ---- one 16-row MMA slice of S: masking and the online softmax ---------------------------------
// Shared by the prefill and decode kernels. s holds the slice's scores in the MMA C layout: this
// lane's rows are row_base + lane / 4 (elements 0, 1) and + 8 (elements 2, 3), its columns
// j0 + nt * 8 + (lane % 4) * 2 (+1).

// Whether the general path runs at all: attn_mask, softcap, ALiBi, a window's left side, packed
// sequences, kv_batch_idx or k_leftpad. One template flag, kGeneral, in each kernel: the plain path
// carries none of this code (the left side's masking alone cost the sm80 kernel 16 bytes of spills
// at hdim 128 on sm_90a; reading packed sequences' offsets in the plain path, 32). A paged cache
// has a flag of its own in the decode kernel (kPaged) and takes the general path in the sm80
// prefill kernel.
inline bool general_path(const AttnParams& p) {
    return p.mask_kind != MaskKind::kNone || p.softcap > 0.f || p.alibi_slopes != nullptr || p.has_window_left ||
           p.cu_seqlens_q != nullptr || p.kv_batch_idx != nullptr || p.k_leftpad != nullptr;
}

// Whether the scores must be scaled before anything else: an additive mask and softcap act on
// scaled scores (and a scale that is not positive would flip the max). Otherwise the scores stay
// raw and the scale is folded into exp2's argument (one FFMA); ALiBi then works in raw units.
__host__ __device__ __forceinline__ bool scale_scores_first(const AttnParams& p, bool general) {
    const bool additive = p.mask_kind != MaskKind::kNone && p.mask_kind != MaskKind::kBool;
    return (general && (additive || p.softcap > 0.f)) || !(p.scale_log2 > 0.f);
}

// Softcap without an additive mask: a score is kept as t = tanh(s * scale * log2(e) / cap), and
// the cap (softcap * log2(e), > 0) becomes exp2's factor, P = exp2((t - m) * cap): the multiply by
// the cap leaves the per-score loop for the FFMA that exp2's argument needs anyway. An additive
// mask's values are base-2 logits, added to cap * t, so with one the cap stays on the score.
__host__ __device__ __forceinline__ bool softcap_folded(const AttnParams& p, bool general) {
    const bool additive = p.mask_kind != MaskKind::kNone && p.mask_kind != MaskKind::kBool;
    return general && p.softcap > 0.f && !additive;
}

// sl, the factor of exp2((s - m) * sl): a kept score s is s * sl base-2 logits. Raw scores: the
// scale times log2(e); scores scaled first: 1; softcap folded: the cap.
__host__ __device__ __forceinline__ float score_log2_factor(const AttnParams& p, bool general) {
    if (softcap_folded(p, general)) return p.softcap * kLog2e;
    return scale_scores_first(p, general) ? 1.f : p.scale_log2;
}

// The score modifications of one (batch, head) (AttnParams: softcap, ALiBi), in the base-2 units
// the kernels work in: with softcap the raw score s becomes cap * tanh(s * scale * log2(e) / cap)
// with cap = softcap * log2(e) (scaled and capped in one pass), or tanh(...) alone where the cap
// is folded into exp2's factor (softcap_folded); ALiBi then subtracts slope * |j - d_i| in
// whatever units the scores are in. Per lane, the slopes of its two rows
// (half hf: row lane / 4 + 8 hf), which differ only where a block's rows are query heads (decode's
// GQA packing: rows_for_heads).
struct ScoreMod {
    float cap;            // 0: no softcap
    float cap_arg;        // the raw score's factor inside the tanh: scale * log2(e) / cap
    bool cap_folded;      // the score is left as the tanh; the cap is exp2's factor (softcap_folded)
    bool alibi;
    // slope * log2(e) in the units the scores are in when ALiBi runs (divided by
    // score_log2_factor: 1 when they are scaled first, the scale times log2(e) when raw, the cap
    // when softcap is folded), so that no pass has to scale them for ALiBi alone.
    float slope[2];
    int diag;             // query i's diagonal key: i + diag (KeyRange::diag_offset)
    int row_step;         // 1: row r is query position row_base + r; 0: every row is at row_base

    __device__ __forceinline__ ScoreMod(const AttnParams& p, int b, int h, int diag_offset)
        : cap_folded(softcap_folded(p, true)), alibi(p.alibi_slopes != nullptr), diag(diag_offset), row_step(1) {
        cap = p.softcap > 0.f ? p.softcap * kLog2e : 0.f;
        cap_arg = p.softcap > 0.f ? p.scale_log2 / cap : 0.f;
        slope[0] = slope[1] = alibi ? p.alibi_slopes[b * p.alibi_batch_stride + h] * slope_units(p) : 0.f;
    }
    __device__ __forceinline__ static float slope_units(const AttnParams& p) {
        return kLog2e / score_log2_factor(p, true);
    }
    // Rows r = row0 + lane / 4 + 8 hf are the query heads h * heads + r of kv head h (r < heads),
    // all at one query position.
    __device__ __forceinline__ void rows_for_heads(const AttnParams& p, int b, int h, int heads, int row0, int lane) {
        row_step = 0;
        if (!alibi) return;
#pragma unroll
        for (int hf = 0; hf < 2; ++hf)
            slope[hf] = p.alibi_slopes[b * p.alibi_batch_stride + h * heads + min(row0 + lane / 4 + hf * 8, heads - 1)] *
                        slope_units(p);
    }
};

// The side of every row's ALiBi diagonal (key i + diag) on which the keys [j_lo, j_hi] of the
// rows [row_lo, row_hi] lie (scale_and_mask's alibi_side): +1 at or left of it (j <= i + diag), -1 at
// or right of it, 0 when they cross it. With causal masking whose diagonal is not right of ALiBi's
// (causal_offset <= diag: flash_attn's alignment, where the two are the same), every key a row
// sees is left of it: the keys the bias then gets wrong are hidden afterwards.
__device__ __forceinline__ int alibi_side(const ScoreMod& mod, int row_lo, int row_hi, int j_lo, int j_hi, bool causal,
                                          int causal_offset) {
    if (j_hi <= row_lo + mod.diag || (causal && causal_offset <= mod.diag)) return 1;
    if (j_lo >= row_hi + mod.diag) return -1;
    return 0;
}

// attn_mask at `at`, in base-2 units (0 or -inf for a bool mask, the bias times log2(e) otherwise).
__device__ __forceinline__ float mask_value(const AttnParams& p, int64_t at) {
    switch (p.mask_kind) {
        case MaskKind::kBool: return static_cast<const uint8_t*>(p.mask)[at] ? 0.f : -INFINITY;
        case MaskKind::kAddF32: return static_cast<const float*>(p.mask)[at] * kLog2e;
        case MaskKind::kAddF16: return __half2float(static_cast<const __half*>(p.mask)[at]) * kLog2e;
        case MaskKind::kAddBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p.mask)[at]) * kLog2e;
        default: return 0.f;
    }
}

// The first and last keys (x, y) among [0, N) that a bool attn_mask lets any of the rows
// row0 .. row0 + rows - 1 of (b, h) see ((N, -1) when none), and how many (row, key) pairs it lets
// through (z), for a block of kThreads threads. The rows' 16-byte chunks (where every row is
// aligned) are one flat index space, read kBatch loads a thread at a time: a thread's loads are
// independent, so a mask of many rows costs a few memory round trips, not one a row (64 rows of
// 2048 keys, one chunk a thread a row, took 46.6 us on the H200, 2026-12-03, docs/perf-notes.md).
// The block reduction goes through three ints of `scratch` (shared memory, free until the
// function returns; every thread of the block must call it).
template <int kThreads, int kBatch>
__device__ __forceinline__ int3 mask_key_range(const AttnParams& p, int b, int h, int row0, int rows, int N, int* scratch) {
    static_assert(kThreads % 32 == 0, "whole warps");
    int lo = N, hi = -1, count = 0;
    const uint8_t* m0 = static_cast<const uint8_t*>(p.mask) + b * p.mask_batch_stride + h * p.mask_head_stride +
                        static_cast<int64_t>(row0) * p.mask_row_stride;
    const int64_t rs = p.mask_row_stride;
    const bool aligned = (reinterpret_cast<uintptr_t>(m0) & 15) == 0 && (rows == 1 || (rs & 15) == 0);
    const int vec = aligned ? N / 16 : 0;   // whole 16-byte chunks a row
    const int chunks = rows * vec;
    // The bytes after the whole chunks (all of an unaligned row): a thread's first one is loaded
    // before the chunks are used, so that a length off the 16-key grid (a static cache's filled
    // keys, seqlens_k) costs no second round trip; any further ones after the chunks.
    const int tail = N - vec * 16;
    int tail_j = -1;
    uint8_t tail_byte = 0;
    if (threadIdx.x < rows * tail) {
        const int r = threadIdx.x / tail;
        tail_j = vec * 16 + (threadIdx.x - r * tail);
        tail_byte = m0[r * rs + tail_j];
    }
    for (int c0 = threadIdx.x; c0 < chunks; c0 += kThreads * kBatch) {
        uint4 w[kBatch];
        int col[kBatch];
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {   // the loads first, then their use
            const int c = c0 + k * kThreads;
            w[k] = make_uint4(0, 0, 0, 0);
            col[k] = 0;
            if (c < chunks) {
                const int r = c / vec;
                col[k] = (c - r * vec) * 16;
                w[k] = *reinterpret_cast<const uint4*>(m0 + r * rs + col[k]);
            }
        }
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {
            const uint32_t words[4] = {w[k].x, w[k].y, w[k].z, w[k].w};
#pragma unroll
            for (int q = 0; q < 4; ++q)
                if (words[q]) {   // bytes are 0 or 1; the lowest set byte is the first key (little endian)
                    lo = min(lo, col[k] + q * 4 + (__ffs(words[q]) - 1) / 8);
                    hi = max(hi, col[k] + q * 4 + (31 - __clz(words[q])) / 8);
                    count += __popc(words[q]);
                }
        }
    }
    if (tail_byte) { lo = min(lo, tail_j); hi = max(hi, tail_j); ++count; }
    for (int c = threadIdx.x + kThreads; c < rows * tail; c += kThreads) {
        const int r = c / tail, j = vec * 16 + (c - r * tail);
        if (m0[r * rs + j]) { lo = min(lo, j); hi = max(hi, j); ++count; }
    }
    lo = __reduce_min_sync(0xffffffffu, lo);
    hi = __reduce_max_sync(0xffffffffu, hi);
    count = static_cast<int>(__reduce_add_sync(0xffffffffu, static_cast<unsigned>(count)));
    if (threadIdx.x == 0) { scratch[0] = N; scratch[1] = -1; scratch[2] = 0; }
    __syncthreads();
    if (threadIdx.x % 32 == 0) {
        atomicMin(scratch, lo);
        atomicMax(scratch + 1, hi);
        atomicAdd(scratch + 2, count);
    }
    __syncthreads();
    const int3 range = make_int3(scratch[0], scratch[1], scratch[2]);
    __syncthreads();   // every thread has read it: the caller may reuse the memory
    return range;
}

// The general path: the scale (when it must go first; with softcap, inside its pass), softcap,
// ALiBi and attn_mask, in that order, each its own pass over the slice behind one uniform branch:
// softcap and ALiBi are short straight loops, kept apart from the mask's, whose per-element switch
// over the mask kinds is large code (with the three in one loop, softcap and ALiBi measured
// 0.18-0.25x of plain prefill, 2026-12-02, H200).
// alibi_side (from alibi_side(), above; 0 where the caller does not ask): +1 or -1 when every key
// of the slice lies on one side of every row's ALiBi diagonal. The bias is then linear in the key,
// slope (j - i - diag) times the side, and splits into a per-element part that needs no |.| (one
// FFMA with a compile-time column) and a part constant over the lane's half-row, returned in
// alibi_off[hf]: the true score is s + alibi_off[hf], which the caller's row_max and softmax_exp
// take as their offset (so the constant costs nothing per element). With alibi_side 0 the bias goes
// in whole, slope |j - i - diag| per element (an add and an FFMA), and alibi_off is not written.
// kMask = false: a general instantiation compiled for calls without attn_mask (prefill_sm90's score
// modifications alone), which carries none of the mask's code.
// mask_on = false: the mask is not read for this slice (the decode kernel's slices inside a key
// range the mask lets wholly through).
template <bool kGeneral, bool kMask = kGeneral, int kNT>
__device__ __forceinline__ void scale_and_mask(float (&s)[kNT][4], const AttnParams& p, int b, int h, int row_base, int j0,
                                               int N, bool scale_first, int lane, const ScoreMod& mod, int alibi_side = 0,
                                               float* alibi_off = nullptr, bool mask_on = true) {
    if (kGeneral && mod.cap_folded) {   // tanh(s * scale log2(e) / cap); the cap is exp2's factor
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] = fast_tanh(s[nt][e] * mod.cap_arg);
    } else if (kGeneral && mod.cap > 0.f) {   // the scale and the cap in one pass: cap * tanh(s * scale log2(e) / cap)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] = mod.cap * fast_tanh(s[nt][e] * mod.cap_arg);
    } else if (scale_first) {
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] *= p.scale_log2;
    }
    if constexpr (kGeneral) {
        if (mod.alibi && alibi_side != 0) {
            // side * slope (c0 + k) for this lane's column k of the slice: slope k per element,
            // slope c0 per half-row into alibi_off.
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                const int i = row_base + (lane / 4 + hf * 8) * mod.row_step;
                const float g = alibi_side > 0 ? mod.slope[hf] : -mod.slope[hf];
                alibi_off[hf] = g * static_cast<float>(j0 + (lane % 4) * 2 - i - mod.diag);
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt) {
                    s[nt][2 * hf] = fmaf(g, static_cast<float>(nt * 8), s[nt][2 * hf]);
                    s[nt][2 * hf + 1] = fmaf(g, static_cast<float>(nt * 8 + 1), s[nt][2 * hf + 1]);
                }
            }
        } else if (mod.alibi) {
            // -slope |j - i - diag|: per row one float offset, then per element an add of the
            // column (a compile-time constant plus this lane's first column) and a |.|.
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                const int i = row_base + (lane / 4 + hf * 8) * mod.row_step;
                const float c0 = static_cast<float>(j0 + (lane % 4) * 2 - i - mod.diag);
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt) {
                    s[nt][2 * hf] -= mod.slope[hf] * fabsf(c0 + static_cast<float>(nt * 8));
                    s[nt][2 * hf + 1] -= mod.slope[hf] * fabsf(c0 + static_cast<float>(nt * 8 + 1));
                }
            }
        }
        if (kMask && mask_on && p.mask_kind != MaskKind::kNone) {
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int i = row_base + lane / 4 + (e / 2) * 8;
                    const int j = j0 + nt * 8 + (lane % 4) * 2 + (e % 2);
                    if (i < p.len_q && j < N)   // never read past the mask
                        s[nt][e] += mask_value(p, b * p.mask_batch_stride + h * p.mask_head_stride + i * p.mask_row_stride +
                                                      j * p.mask_col_stride);
                }
        }
    }
}

// Keys past N, (causal) above the diagonal j <= i + offset and (with a window's left side) before
// j >= i + lower get -inf: per row two limits, then compares per element against a compile-time
// column. row_step 0: every row is at query position row_base (decode's packed GQA rows).
// kFromNT: the caller knows the first kFromNT 8-key groups visible to every row; they are not compared.
template <int kNT, int kFromNT = 0>
__device__ __forceinline__ void hide_keys(float (&s)[kNT][4], int row_base, int j0, int N, bool causal, int offset, int lane,
                                          bool lower = false, int lower_offset = 0, int row_step = 1) {
    const int col0 = j0 + (lane % 4) * 2;   // this lane's first key column in the tile
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        const int i = row_base + (lane / 4 + hf * 8) * row_step;
        int limit = N - col0;                                   // columns >= limit are hidden
        if (causal) limit = min(limit, i + offset + 1 - col0);
        const int first = lower ? i + lower_offset - col0 : -(1 << 30);   // columns < first are hidden
#pragma unroll
        for (int nt = kFromNT; nt < kNT; ++nt) {
            if (nt * 8 >= limit || nt * 8 < first) s[nt][2 * hf] = -INFINITY;
            if (nt * 8 + 1 >= limit || nt * 8 + 1 < first) s[nt][2 * hf + 1] = -INFINITY;
        }
    }
}

// The end of a row: its running max m (in base-2 scaled units: m_run * sl) and sum l, and a sink
// logit (base 2; -inf: none) that joins the denominator. Returns the factor O must take (1 / l
// without a sink) and lse (natural log). A row that saw no key: O = 0, lse = the sink (-inf if none).
// kApprox: the hardware's approximate ex2, lg2 and divide (relative errors near 2^-22, far below
// the fp16 / bf16 output's rounding; total >= 1, so no denormal reaches them), for prefill_sm90's
// epilogue, where the library's accurate forms came to ~140 instructions a thread per work tile.
struct RowEnd { float o_scale, lse; };
template <bool kApprox = false>
__device__ __forceinline__ RowEnd finish_row(float m, float l, float sink) {
    if (!(l > 0.f)) m = -INFINITY;
    const float top = fmaxf(m, sink);
    if (top == -INFINITY) return {0.f, -INFINITY};
    auto exp2_ = [](float x) { if constexpr (kApprox) return fast_exp2(x); else return exp2f(x); };
    const float keep = m == -INFINITY ? 0.f : exp2_(m - top);   // exp2(-inf) is 0: no sink adds nothing
    const float total = l * keep + exp2_(sink - top);
    if constexpr (kApprox) return {__fdividef(keep, total), (top + fast_log2(total)) * kLn2};
    else return {keep / total, (top + log2f(total)) * kLn2};
}

// The sink of query head h in base 2 (-inf without sinks).
__device__ __forceinline__ float sink_log2(const AttnParams& p, int h) {
    return p.sinks ? p.sinks[h] * kLog2e : -INFINITY;
}

// The row max of half hf (row lane / 4 + 8 hf) over the slice and the running max m.
template <int kNT>
__device__ __forceinline__ float row_max(const float (&s)[kNT][4], int hf, float m) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) m = fmaxf(m, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
    return quad_max(m);
}
// The same where the true scores are s + off (off: this lane's constant for the half-row, the ALiBi
// part scale_and_mask returns).
template <int kNT>
__device__ __forceinline__ float row_max(const float (&s)[kNT][4], int hf, float m, float off) {
    float x = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) x = fmaxf(x, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
    return quad_max(fmaxf(m, x + off));
}


// The two halves of one online-softmax step for half hf (row lane / 4 + 8 hf), given its new row
// max mx. softmax_rescale moves the running max to mx and returns the factor alpha by which l and
// O must be scaled (O before the next P V is added). softmax_exp turns the half's scores into
// P = exp2((S - m) * sl) in place and returns this lane's share of the row sum, to be added to l
// (the 4 lanes of a row are summed at the end). A row that has seen no key yet (max -inf) uses 0
// as its reference, so P = 0 and alpha = 0, not NaN.
__device__ __forceinline__ float softmax_rescale(float& m_run, float mx, float sl) {
    const float m_new = mx == -INFINITY ? 0.f : mx;
    const float alpha = fast_exp2((m_run - m_new) * sl);
    m_run = mx;
    return alpha;
}
// Lazy rescaling (the conditional rescale of FlashAttention-4): the running max, the reference
// of P = exp2((S - m_run) sl), moves only when the row's max passes it by more than kRescaleLog2
// in base-2 units. P then stays at most 2^8, well inside fp16's and bf16's range, and l and O keep
// one common reference, so the result is the same softmax; a tile where no reference moved leaves
// O unscaled. Used where it measured faster: the sm80 kernel per head dim (its warps move all
// their rows' references together, prefill_kernel.cuh) and prefill_sm90 at head dim 256.
constexpr float kRescaleLog2 = 8.f;
// prefill_sm90's form, per row: the reference moves past kRescaleLog2 or while the row has seen
// no key. Returns alpha (1 when the reference stays) and whether it moved.
__device__ __forceinline__ float softmax_rescale_lazy(float& m_run, float mx, float sl, bool& moved) {
    moved = m_run == -INFINITY || (mx - m_run) * sl > kRescaleLog2;
    return moved ? softmax_rescale(m_run, mx, sl) : 1.f;
}
// P = exp2((S - m) sl) given neg = -m sl (softmax_exp's body).
template <int kNT>
__device__ __forceinline__ float softmax_exp_from(float (&s)[kNT][4], int hf, float sl, float neg) {
    float sum = 0.f;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
        s[nt][2 * hf] = fast_exp2(fmaf(s[nt][2 * hf], sl, neg));
        s[nt][2 * hf + 1] = fast_exp2(fmaf(s[nt][2 * hf + 1], sl, neg));
        sum += s[nt][2 * hf] + s[nt][2 * hf + 1];
    }
    return sum;
}
template <int kNT>
__device__ __forceinline__ float softmax_exp(float (&s)[kNT][4], const float& m_run, int hf, float sl) {
    const float m_ref = m_run == -INFINITY ? 0.f : m_run;
    return softmax_exp_from(s, hf, sl, -m_ref * sl);
}
// The same where the true scores are s + off (row_max's offset form).
template <int kNT>
__device__ __forceinline__ float softmax_exp(float (&s)[kNT][4], const float& m_run, int hf, float sl, float off) {
    const float m_ref = m_run == -INFINITY ? 0.f : m_run;
    return softmax_exp_from(s, hf, sl, (off - m_ref) * sl);
}

// One whole step with O in hand: when rescale, move the running max and rescale l and O; then P.
template <int kNT, int kDT>
__device__ __forceinline__ void softmax_step(float (&s)[kNT][4], float (&o)[kDT][4], float& m_run, float& l_run, float mx,
                                             int hf, float sl, bool rescale) {
    if (rescale) {
        const float alpha = softmax_rescale(m_run, mx, sl);
        l_run *= alpha;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt) { o[dt][2 * hf] *= alpha; o[dt][2 * hf + 1] *= alpha; }
    }
    l_run += softmax_exp(s, m_run, hf, sl);
}

// P (the exponentiated S accumulators of key columns 16 kk .. 16 kk + 15) packed to T as the A
// fragment of the next product: the C layout of two 16x8 tiles is the A layout of one 16x16 tile.
template <typename T, int kNT>
__device__ __forceinline__ void pack_p(const float (&s)[kNT][4], int kk, uint32_t (&a)[4]) {
    a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
    a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
    a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

}  // namespace flashmin
