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

__device__ __forceinline__ float mask_value(const AttnParams& p, int64_t at) {   // base-2 units
    switch (p.mask_kind) {
        case MaskKind::kBool: return static_cast<const uint8_t*>(p.mask)[at] ? 0.f : -INFINITY;
        case MaskKind::kAddF32: return static_cast<const float*>(p.mask)[at] * kLog2e;
        case MaskKind::kAddF16: return __half2float(static_cast<const __half*>(p.mask)[at]) * kLog2e;
        case MaskKind::kAddBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p.mask)[at]) * kLog2e;
        default: return 0.f;
    }
}

// ---- one 16-row MMA slice of S: masking and the online softmax ---------------------------------
// Shared by the prefill and decode kernels. s holds the slice's scores in the MMA C layout: this
// lane's rows are row_base + lane / 4 (elements 0, 1) and + 8 (elements 2, 3), its columns
// j0 + nt * 8 + (lane % 4) * 2 (+1).

// The general path, element by element: the scale (when it must go first) and attn_mask.
template <bool kHasMask, int kNT>
__device__ __forceinline__ void scale_and_mask(float (&s)[kNT][4], const AttnParams& p, int b, int h, int row_base, int j0,
                                               int N, bool scale_first, int lane) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int i = row_base + lane / 4 + (e / 2) * 8;
            const int j = j0 + nt * 8 + (lane % 4) * 2 + (e % 2);
            float x = scale_first ? s[nt][e] * p.scale_log2 : s[nt][e];
            if (kHasMask && i < p.len_q && j < N)   // never read past the mask
                x += mask_value(p, b * p.mask_batch_stride + h * p.mask_head_stride + i * p.mask_row_stride +
                                       j * p.mask_col_stride);
            s[nt][e] = x;
        }
}

// Keys past N and (causal) above the diagonal j <= i + offset get -inf: per row one limit, then
// one compare per element against a compile-time column.
template <int kNT>
__device__ __forceinline__ void hide_keys(float (&s)[kNT][4], int row_base, int j0, int N, bool causal, int offset, int lane) {
    const int col0 = j0 + (lane % 4) * 2;   // this lane's first key column in the tile
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        const int i = row_base + lane / 4 + hf * 8;
        int limit = N - col0;                                   // columns >= limit are hidden
        if (causal) limit = min(limit, i + offset + 1 - col0);
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
            if (nt * 8 >= limit) s[nt][2 * hf] = -INFINITY;
            if (nt * 8 + 1 >= limit) s[nt][2 * hf + 1] = -INFINITY;
        }
    }
}

// The row max of half hf (row lane / 4 + 8 hf) over the slice and the running max m.
template <int kNT>
__device__ __forceinline__ float row_max(const float (&s)[kNT][4], int hf, float m) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) m = fmaxf(m, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
    return quad_max(m);
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
template <int kNT>
__device__ __forceinline__ float softmax_exp(float (&s)[kNT][4], const float& m_run, int hf, float sl) {
    const float m_ref = m_run == -INFINITY ? 0.f : m_run;
    const float neg = -m_ref * sl;
    float sum = 0.f;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
        s[nt][2 * hf] = fast_exp2(fmaf(s[nt][2 * hf], sl, neg));
        s[nt][2 * hf + 1] = fast_exp2(fmaf(s[nt][2 * hf + 1], sl, neg));
        sum += s[nt][2 * hf] + s[nt][2 * hf + 1];
    }
    return sum;
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
