// combine_kernel.cuh: the merge of the decode kernel's split-KV partials (a second launch).
#pragma once

#include <cstdint>

#include "flashmin.h"
#include "common/ptx.cuh"

namespace flashmin {
namespace decode {

// Merge split-KV partials: out = sum_s w_s O_s / sum_s w_s with w_s = exp(lse_s - max lse).
// One warp per row; lane j reads the lse of split s0 + j (one load for 32 splits), the weights go
// round by shuffles, and each lane owns head-dim columns lane, lane + 32, ...; the O loads do not
// depend on the lse loads, so the row costs about one memory round trip. More than 32 splits are
// merged 32 at a time with the running sums rescaled (online softmax over the chunks). An
// attention sink (AttnParams::sinks) joins the denominator here, once, as one more term with no value.
// (A second launch: merging in the decode kernel itself, by the last split to finish a row
// block, measured 1-6% slower; with programmatic dependent launch this kernel is already
// resident, waiting, when the decode grid finishes.)
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(128) combine_splits_kernel(const AttnParams p) {
    constexpr unsigned kAll = 0xffffffffu;
    const int64_t rows = static_cast<int64_t>(p.batch) * p.heads_q * p.len_q;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    wait_for_prerequisite_grid();
    if (row >= rows) return;
    const int i = row % p.len_q, h = (row / p.len_q) % p.heads_q, b = row / (static_cast<int64_t>(p.len_q) * p.heads_q);
    float m = -INFINITY, wsum = 0.f, acc[kHeadDim / 32] = {};
    for (int s0 = 0; s0 < p.num_splits; s0 += 32) {
        const int n = min(32, p.num_splits - s0);
        const float l = lane < n ? p.lse_accum[(s0 + lane) * rows + row] : -INFINITY;
        float cm = l;
#pragma unroll
        for (int d = 16; d > 0; d /= 2) cm = fmaxf(cm, __shfl_xor_sync(kAll, cm, d));
        const float m_new = fmaxf(m, cm);
        if (m_new == -INFINITY) continue;              // no split so far saw a key (warp-uniform)
        const float keep = __expf(m - m_new);          // 0 while m is -inf
        wsum *= keep;
#pragma unroll
        for (int c = 0; c < kHeadDim / 32; ++c) acc[c] *= keep;
        const float w = __expf(l - m_new);             // 0 for an empty split
        float ws = w;
#pragma unroll
        for (int d = 16; d > 0; d /= 2) ws += __shfl_xor_sync(kAll, ws, d);
        wsum += ws;
        const float* src = p.o_accum + (s0 * rows + row) * kHeadDim + lane;
#pragma unroll 4
        for (int j = 0; j < n; ++j) {
            const float wj = __shfl_sync(kAll, w, j);
#pragma unroll
            for (int c = 0; c < kHeadDim / 32; ++c) acc[c] += wj * src[j * rows * kHeadDim + 32 * c];
        }
        m = m_new;
    }
    if (p.sinks) {   // natural-log units, like lse_accum
        const float sink = p.sinks[p.rows_are_heads ? h * p.rows_are_heads + i : h];
        const float top = fmaxf(m, sink);
        if (top != -INFINITY) {
            const float keep = m == -INFINITY ? 0.f : __expf(m - top);
            wsum = wsum * keep + __expf(sink - top);
#pragma unroll
            for (int c = 0; c < kHeadDim / 32; ++c) acc[c] *= keep;
            m = top;
        }
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    T* dst = static_cast<T*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + i * p.o_row_stride;
#pragma unroll
    for (int c = 0; c < kHeadDim / 32; ++c)
        if (lane + 32 * c < p.head_dim) dst[lane + 32 * c] = static_cast<T>(acc[c] * inv);
    if (lane == 0) p.lse[row] = wsum > 0.f ? m + __logf(wsum) : -INFINITY;
}

}  // namespace decode
}  // namespace flashmin
