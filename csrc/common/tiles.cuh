// common/tiles.cuh: global -> shared tile loads with cp.async (padded or XOR-swizzled rows).
#pragma once

#include <cstdint>

#include "common/ptx.cuh"

namespace flashmin {

// rows [row0, row0 + kRows) of a (len, head_dim) matrix -> shared memory, zero-filled outside,
// by kThreads consecutive threads (the block, or one warp of the decode kernel; this thread is
// number threadIdx.x % kThreads among them). Each thread owns one 16-byte column chunk and walks down the rows with one running
// pointer (a fixed row step), so the loop costs one 64-bit add per load, not a live address per
// load. kSwizzled: unpadded rows with chunk c of row r at c ^ (r % 8) (Traits::kSwizzleKV), else
// padded rows of Tr::kStride. kPolicy: the loads carry the L2 cache policy `policy` (l2_policy).
// A zero-filled chunk still names a source address: `inside` when given (an address the tensor
// owns), else src; a caller whose src may point outside the tensor (a paged cache's page base
// shifted back by the rows before the page) passes the head's own base.
template <typename Tr, int kRows, bool kSwizzled, int kThreads, bool kPolicy = false, typename T>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t row_stride, int row0, int len, int head_dim,
                                          uint64_t policy = 0, const T* inside = nullptr) {
    const T* none = inside ? inside : src;
    const int tid = threadIdx.x % kThreads;   // read here, not passed in: it stays a cheap special register
    constexpr int kChunks = Tr::kHeadDim / 8;   // 16-byte chunks per row
    constexpr int kDstStride = kSwizzled ? Tr::kHeadDim : Tr::kStride;
    auto at = [](int r, int c) { return r * kDstStride + (kSwizzled ? (c ^ (r % 8)) : c) * 8; };
    if constexpr (kThreads % kChunks == 0) {
        constexpr int kStep = kThreads / kChunks;   // rows between one thread's loads
        constexpr int kIters = (kRows + kStep - 1) / kStep;
        const int r = tid / kChunks, c = tid % kChunks;
        const bool col_ok = c * 8 < head_dim;
        const T* g = src + (row0 + r) * row_stride + c * 8;
        const int64_t step = opaque64(kStep * row_stride);
#pragma unroll
        for (int it = 0; it < kIters; ++it) {
            if (kRows % kStep != 0 && r + it * kStep >= kRows) break;
            const bool valid = col_ok && row0 + r + it * kStep < len;
            cp_async_kv<kPolicy>(dst + at(r + it * kStep, c), valid ? g : none, valid, policy);
            g += step;
        }
    } else {
        for (int idx = tid; idx < kRows * kChunks; idx += kThreads) {
            const int r = idx / kChunks, c = idx % kChunks;
            const bool valid = row0 + r < len && c * 8 < head_dim;
            cp_async_kv<kPolicy>(dst + at(r, c), valid ? src + (row0 + r) * row_stride + c * 8 : none, valid, policy);
        }
    }
}

// kRows whole rows -> XOR-swizzled shared memory (chunk c of row r at c ^ (r % 8)), by kThreads
// consecutive threads, for a caller that knows every row and every column chunk is inside the
// tensor: no bounds, no zero fill, one running pointer. g: this thread's first chunk (row
// tid / kChunks, chunk tid % kChunks of it); step: the source distance between its rows, which are
// kThreads / kChunks rows apart.
template <typename Tr, int kRows, int kThreads, bool kPolicy = false, typename T>
__device__ __forceinline__ void load_whole_rows(T* dst, const T* g, int64_t step, uint64_t policy = 0) {
    constexpr int kChunks = Tr::kHeadDim / 8;
    constexpr int kStep = kThreads / kChunks;
    static_assert(kThreads % kChunks == 0 && kRows % kStep == 0, "whole rows in every pass");
    const int tid = threadIdx.x % kThreads;
    const int r = tid / kChunks, c = tid % kChunks;
#pragma unroll
    for (int it = 0; it < kRows / kStep; ++it) {
        const int row = r + it * kStep;
        cp_async_kv<kPolicy>(dst + row * Tr::kHeadDim + (c ^ (row % 8)) * 8, g, true, policy);
        g += step;
    }
}

// load_tile for a paged KV cache: row j of the (len, head_dim) matrix is row j % page_size of page
// pages[j >> page_shift], pages page_stride elements apart from src (src includes the head's
// offset). Each thread looks up the page of every row it copies (the prefill kernel's tiles are
// prefetched a tile ahead, which hides the lookup); rows at or past len are zero-filled and their
// pages never read (block_table's entries past a row's keys may not exist).
template <typename Tr, int kRows, bool kSwizzled, int kThreads, typename T>
__device__ __forceinline__ void load_tile_paged(T* dst, const T* src, int64_t page_stride, int64_t row_stride, const int32_t* pages,
                                                int page_shift, int row0, int len, int head_dim) {
    const int tid = threadIdx.x % kThreads;
    constexpr int kChunks = Tr::kHeadDim / 8;
    constexpr int kDstStride = kSwizzled ? Tr::kHeadDim : Tr::kStride;
    const int in_page = (1 << page_shift) - 1;
    for (int idx = tid; idx < kRows * kChunks; idx += kThreads) {
        const int r = idx / kChunks, c = idx % kChunks;
        const int j = row0 + r;
        const bool valid = j < len && c * 8 < head_dim;
        const T* g = src;
        if (valid) g = src + static_cast<int64_t>(pages[j >> page_shift]) * page_stride + (j & in_page) * row_stride + c * 8;
        cp_async_16(dst + r * kDstStride + (kSwizzled ? (c ^ (r % 8)) : c) * 8, g, valid);
    }
}

}  // namespace flashmin
