// decode_kernel.cuh: short queries (1-16 rows) over long KV caches, split-KV, fp16/bf16.
//
// Decode is memory bound: the math per key is one 16-row MMA slice, so what counts is how many
// bytes are in flight. The layout is chosen for that:
// - one block per (16 query rows, head, batch, split); its warps take the split's key tiles in
//   turn (warp w: tiles w, w + kNWarps, ...), each with its own m, l and O, so every warp does
//   useful work even for a single query row;
// - a split is a contiguous key range, or, in sweep order (AttnParams::split_sweep), every
//   num_splits-th group of kNWarps tiles, with the splits of one head launched side by side:
//   the blocks running at one time then read neighbouring memory (see plan_decode);
// - every warp streams its own tiles through a private ring of kStages (K, V) slots in shared
//   memory with cp.async: kStages - 1 tiles are in flight while one is computed, and a warp waits
//   only for its own copies (cp.async.wait_group + __syncwarp, no block barrier in the loop);
// - the K/V loads carry an L2 policy: evict-first for a cache that is small against the L2 (the
//   host decides: AttnParams::kv_evict_first), so the stream does not push out other data;
// - after the loop the warps' partial results are merged through shared memory; with one split
//   the block writes the output, otherwise fp32 partial O and lse, merged by combine_splits_kernel.
// The PTX wrappers, the tile loader and the slice helpers (masking, online softmax) are shared
// with the prefill kernels (csrc/common/).
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/ptx.cuh"
#include "common/softmax.cuh"
#include "common/tiles.cuh"
#include "common/warp_gemm.cuh"

namespace flashmin {
namespace decode {

template <int kHeadDim_, int kWarpN_, int kStages_, int kNWarps_>
struct DecodeTraits {
    // K/V loads: cp_async_16_stream, the L2::256B prefetch hint (+1-2% over none in session 2; no
    // change in session 4) and an L2 policy (AttnParams::kv_evict_first).
    static constexpr bool kL2Hint = true;
    static constexpr int kHeadDim = kHeadDim_;   // compiled head dim; smaller multiples of 8 are zero-padded
    static constexpr int kWarpN = kWarpN_;       // keys per tile (one warp computes one tile at a time)
    static constexpr int kStages = kStages_;     // ring slots per warp
    static constexpr int kNWarps = kNWarps_;
    static constexpr int kThreads = 32 * kNWarps;
    static constexpr int kBlockM = 16;           // query rows per block: one MMA slice
    static constexpr int kNT = kWarpN / 8, kDT = kHeadDim / 8, kKS = kHeadDim / 16;
    // K/V tiles are unpadded, 16-byte chunks XOR-swizzled within each row: chunk c of row r sits
    // at chunk c ^ (r % 8). The 8 rows an ldmatrix reads then fall in distinct banks, and every
    // 32-byte sector of a global row lands in one aligned 32-byte sector of shared memory. (With
    // 16 bytes of row padding instead, odd rows straddle sectors and the L2 serves each of their
    // sectors twice: 1.5x the L2 sector reads of the data, measured with ncu at B=8, H=32, D=128.)
    static constexpr int kStride = kHeadDim;
    static constexpr int kTile = kWarpN * kStride;            // elements of one K (or V) tile
    static constexpr int kQStride = kHeadDim + 8;             // Q: 16 rows, padded (read once)
    static constexpr int kSmemQ = kBlockM * kQStride;
    static constexpr int kSmemRing = kNWarps * kStages * 2 * kTile;
    // The merge reuses the rings: per warp 16 rows of fp32 O (+4 floats of padding), m, l, weight.
    static constexpr int kMergeStride = kHeadDim + 4;
    static constexpr int kMergeBytes = (kNWarps * kBlockM * (kMergeStride + 3) + kBlockM) * 4;   // O, m, l, weights; lse
    static constexpr int kLoopBytes = (kSmemQ + kSmemRing) * 2;
    static constexpr int kSmemBytes = kLoopBytes > kMergeBytes ? kLoopBytes : kMergeBytes;
    static_assert(kWarpN % 16 == 0 && kHeadDim % 16 == 0 && kHeadDim <= 256, "whole ldmatrix.x4 tiles");
    static_assert(32 % (kHeadDim / 8) == 0, "a warp loads whole rows of 16-byte chunks at a time");
    static_assert(kHeadDim >= 64, "the swizzle permutes 8 chunks (128 bytes) of a row");
    static_assert(kStages >= 2, "at least one tile in flight while another is computed");
};

template <typename Tr, typename T, bool kHasMask, bool kSplitKV>
__global__ void __launch_bounds__(Tr::kThreads) decode_kernel(const AttnParams p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    if constexpr (kSplitKV) allow_dependent_launch();
    T* sQ = reinterpret_cast<T*>(smem_raw);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    T* ring = sQ + Tr::kSmemQ + warp * Tr::kStages * 2 * Tr::kTile;   // slot s: K at 2s, V at 2s + 1

    // Grid (row blocks, heads, batch x splits), or in sweep order (row blocks, splits, batch x heads).
    const bool sweep = kSplitKV && p.split_sweep;
    const int h = sweep ? blockIdx.z % p.heads_q : blockIdx.y;
    const int b = sweep ? blockIdx.z / p.heads_q : kSplitKV ? blockIdx.z / p.num_splits : blockIdx.z;
    const int split = sweep ? blockIdx.y : kSplitKV ? blockIdx.z % p.num_splits : 0;
    const int row0 = blockIdx.x * Tr::kBlockM;

    const BlockInfo blk(p, b, h);
    const KeyRange keys = blk.keys(p);
    const int N = keys.len_k, offset = keys.causal_offset;
    int t_begin = 0, t_end = (keys.end(p, row0, Tr::kBlockM) + Tr::kWarpN - 1) / Tr::kWarpN, t_step = Tr::kNWarps;
    if (sweep) {                       // tile groups split, split + num_splits, ...
        t_begin = split * Tr::kNWarps;
        t_step = p.num_splits * Tr::kNWarps;
    } else if constexpr (kSplitKV) {   // one contiguous range
        const int per_split = (t_end + p.num_splits - 1) / p.num_splits;
        t_begin = min(t_end, split * per_split);
        t_end = min(t_end, t_begin + per_split);
    }
    // This warp's tiles: t_begin + warp + i * t_step, i < n_mine.
    const int first = t_begin + warp;
    const int n_mine = first < t_end ? (t_end - first + t_step - 1) / t_step : 0;

    const T* gQ = blk.q<T>(p);
    const T* gK = blk.k<T>(p);
    const T* gV = blk.v<T>(p);

    const uint64_t policy = l2_policy(p.kv_evict_first);
    auto load = [&](int i) {   // tile i of this warp into slot i % kStages
        const int j0 = (first + i * t_step) * Tr::kWarpN;
        T* slot = ring + (i % Tr::kStages) * 2 * Tr::kTile;
        load_tile<Tr, Tr::kWarpN, true, 32>(slot, gK, p.k_row_stride, j0, N, p.head_dim, policy);
        load_tile<Tr, Tr::kWarpN, true, 32>(slot + Tr::kTile, gV, p.v_row_stride, j0, N, p.head_dim, policy);
    };

    // Q (one group for the whole block), then the first kStages - 1 tiles of every warp.
    for (int idx = threadIdx.x; idx < Tr::kBlockM * (Tr::kHeadDim / 8); idx += Tr::kThreads) {
        const int r = idx / (Tr::kHeadDim / 8), c = idx % (Tr::kHeadDim / 8);
        const bool valid = row0 + r < p.len_q && c * 8 < p.head_dim;
        cp_async_16(sQ + r * Tr::kQStride + c * 8, valid ? gQ + (row0 + r) * p.q_row_stride + c * 8 : gQ, valid);
    }
    cp_async_commit();
#pragma unroll
    for (int i = 0; i < Tr::kStages - 1; ++i) {
        if (i < n_mine) load(i);
        cp_async_commit();
    }
    cp_async_wait<Tr::kStages - 1>();   // this thread's Q copies have landed
    __syncthreads();                    // ... and everyone's

    // One 16-row MMA slice per warp: the arrays below have a slice dimension of 1 for the
    // warp-level products (common/warp_gemm.cuh), which serve the prefill kernel's kMT slices too.
    const int mi = lane / 8, mr = lane % 8;
    uint32_t qf[1][Tr::kKS][4];   // Q fragments, in registers for the whole kernel
    {
        const uint32_t q_lane = smem_addr(&sQ[(lane % 16) * Tr::kQStride + (lane / 16) * 8]);
#pragma unroll
        for (int ks = 0; ks < Tr::kKS; ++ks) ldmatrix_x4(qf[0][ks], q_lane + ks * 32);
    }
    // ldmatrix rows: K lane reads key (mi / 2) * 8 + mr, chunk 2 ks + mi % 2; V lane reads key
    // (mi % 2) * 8 + mr, chunk 2 dp + mi / 2. The row is mr modulo 8, so the stored chunk is
    // (2 ks + c) ^ mr = 2 ks ^ (c ^ mr): a per-lane XOR of the compile-time 2 ks.
    const uint32_t k_lane = smem_addr(&ring[((mi / 2) * 8 + mr) * Tr::kStride]);
    const uint32_t v_lane = smem_addr(&ring[Tr::kTile + ((mi % 2) * 8 + mr) * Tr::kStride]);
    const uint32_t k_xor = (mi % 2) ^ mr, v_xor = (mi / 2) ^ mr;
    constexpr uint32_t kRowBytes = Tr::kStride * sizeof(T);
    constexpr uint32_t kSlotBytes = 2 * Tr::kTile * sizeof(T);

    float o[1][Tr::kDT][4];
#pragma unroll
    for (int dt = 0; dt < Tr::kDT; ++dt) o[0][dt][0] = o[0][dt][1] = o[0][dt][2] = o[0][dt][3] = 0.f;
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};   // rows lane/4 and lane/4 + 8

    const bool additive = kHasMask && p.mask_kind != MaskKind::kBool;
    const bool scale_first = additive || !(p.scale_log2 > 0.f);
    const float sl = scale_first ? 1.f : p.scale_log2;

    for (int i = 0; i < n_mine; ++i) {
        // Refill the slot tile i-1 used (every lane left it at the __syncwarp below), then wait
        // for tile i: at most kStages - 1 newer groups may still be in flight.
        if (i + Tr::kStages - 1 < n_mine) load(i + Tr::kStages - 1);
        cp_async_commit();
        cp_async_wait<Tr::kStages - 1>();
        __syncwarp();

        const int j0 = (first + i * t_step) * Tr::kWarpN;
        const uint32_t slot_off = (i % Tr::kStages) * kSlotBytes;
        float s[1][Tr::kNT][4];
        warp_qk<T, Tr::kKS, true, 0, kRowBytes, true>(s, qf, 0, opaque(k_lane + slot_off), k_xor);

        if (kHasMask || scale_first) scale_and_mask<kHasMask>(s[0], p, b, h, row0, j0, N, scale_first, lane);
        if (j0 + Tr::kWarpN > N || (p.is_causal && j0 + Tr::kWarpN - 1 > row0 + offset))
            hide_keys(s[0], row0, j0, N, p.is_causal, offset, lane);
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) softmax_step(s[0], o[0], m_run[hf], l_run[hf], row_max(s[0], hf, m_run[hf]), hf, sl, true);

        warp_pv<T, kRowBytes, true>(o, s, opaque(v_lane + slot_off), v_xor);
        __syncwarp();   // every lane is done with this slot before it is refilled
    }
    cp_async_wait<0>();
    __syncthreads();   // every warp is done with its ring: the merge area may overwrite them

    // Merge the warps: row r's result is sum_w 2^((m_w - M) sl) O_w / sum_w 2^((m_w - M) sl) l_w.
    float* mO = reinterpret_cast<float*>(smem_raw);                               // [warp][row][kMergeStride]
    float* mM = mO + Tr::kNWarps * Tr::kBlockM * Tr::kMergeStride;                 // [warp][row]
    float* mL = mM + Tr::kNWarps * Tr::kBlockM;                                     // [warp][row]
    float* mW = mL + Tr::kNWarps * Tr::kBlockM;                                     // [warp][row]: weight / total
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        const int r = lane / 4 + hf * 8;
        float* dst = mO + (warp * Tr::kBlockM + r) * Tr::kMergeStride + (lane % 4) * 2;
#pragma unroll
        for (int dt = 0; dt < Tr::kDT; ++dt) *reinterpret_cast<float2*>(dst + dt * 8) = make_float2(o[0][dt][2 * hf], o[0][dt][2 * hf + 1]);
        const float l = quad_sum(l_run[hf]);
        if (lane % 4 == 0) { mM[warp * Tr::kBlockM + r] = m_run[hf]; mL[warp * Tr::kBlockM + r] = l; }
    }
    __syncthreads();
    float* rowLse = mW + Tr::kNWarps * Tr::kBlockM;   // never overlaps: kMergeBytes counts it
    if (threadIdx.x < Tr::kBlockM) {
        const int r = threadIdx.x;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < Tr::kNWarps; ++w) M = fmaxf(M, mM[w * Tr::kBlockM + r]);
        float total = 0.f, wts[Tr::kNWarps];
#pragma unroll
        for (int w = 0; w < Tr::kNWarps; ++w) {
            const float m = mM[w * Tr::kBlockM + r];
            wts[w] = m == -INFINITY ? 0.f : fast_exp2((m - M) * sl);
            total += wts[w] * mL[w * Tr::kBlockM + r];
        }
        const float inv = total > 0.f ? 1.f / total : 0.f;   // a row that saw no key: zeros
#pragma unroll
        for (int w = 0; w < Tr::kNWarps; ++w) mW[w * Tr::kBlockM + r] = wts[w] * inv;
        rowLse[r] = total > 0.f ? (M * sl + log2f(total)) * kLn2 : -INFINITY;
    }
    __syncthreads();

    const int rows_here = min(Tr::kBlockM, p.len_q - row0);
    const int64_t rows = static_cast<int64_t>(p.batch) * p.heads_q * p.len_q;
    for (int idx = threadIdx.x; idx < rows_here * Tr::kHeadDim; idx += Tr::kThreads) {
        const int r = idx / Tr::kHeadDim, c = idx % Tr::kHeadDim;
        float acc = 0.f;
#pragma unroll
        for (int w = 0; w < Tr::kNWarps; ++w) acc += mW[w * Tr::kBlockM + r] * mO[(w * Tr::kBlockM + r) * Tr::kMergeStride + c];
        const int i = row0 + r;
        if constexpr (kSplitKV) {
            const int64_t row = blk.lse_row0(p) + i;
            p.o_accum[(split * rows + row) * Tr::kHeadDim + c] = acc;
            if (c == 0) p.lse_accum[split * rows + row] = rowLse[r];
        } else {
            if (c < p.head_dim)
                blk.o<T>(p)[i * p.o_row_stride + c] = static_cast<T>(acc);
            if (c == 0) p.lse[blk.lse_row0(p) + i] = rowLse[r];
        }
    }
}

// How to split the key range (sets p.num_splits and p.split_sweep).
//
// (1) A (batch, head, row-block) grid smaller than the GPU: about one block per SM, never so
// many splits that a warp is left with fewer than two tiles (below that the fixed costs - Q, the
// merge, the combine - outweigh the streaming). One block per SM is enough to stream at the
// bandwidth (its warps keep kNWarps x (kStages - 1) tiles in flight), and every split past that
// adds partials to write and merge. Measured at B=8, H=12, D=64 (96 blocks on 132 SMs, torch
// profiler, L2 flushed): unsplit 14.7 / 45.9 / 145.8 us at 1k / 4k / 16k keys against 17.9 /
// 47.9 / 147.9 us for 4 splits (the full wave of 3 blocks per SM the previous plan chose), and
// 2 or 3 splits, which leave some SMs with two blocks and others with one, were slower still.
//
// (2) A grid that fills the GPU, over a long cache (kLongTiles tiles, 32k keys): 8 splits.
// Unsplit, the blocks running at one time each stream their own head, 16 MB apart at 64k keys
// in a (B, H, L, D) cache; the read rate then stays at about 3.10 TB/s, where cuDNN's decode
// also sits, while a reader whose blocks take neighbouring chunks reaches 3.15 (session 6,
// scripts/read_ceiling.py). With 8 splits in sweep order (below) the 132 blocks that run at once
// read about 16 heads, each through one window. Measured at B=8, H=32, D=128 (scripts/tune.py,
// session 7, runs S7-2 to S7-5; ratios to SDPA's default in the same process): 32k / 64k /
// 128k keys 1.006-1.008 / 1.009-1.010 / 1.010x against 0.999-1.000 / 0.998-1.000 / 0.995x
// unsplit; 12 or 16 splits the same, 4 splits about half the gain, 2 none. At 16k keys 8 splits
// measured 0.999-1.001x against 1.000-1.002x unsplit, at 4k 0.985x: no gain there, so the limit.
// In the (B, L, H, D) layout of flash_attn_with_kvcache, 8 splits in the plain order (which puts
// a batch row's heads, i.e. neighbouring memory, side by side): +0.8% / +1.2% at 32k / 64k keys.
// Head dim 64 (two blocks per SM), B=8, H=24: +1.8% / +2.3% (S7-5).
//
// (3) Sweep order: when each head's keys are contiguous (a (B, H, L, D)-like cache) and the
// splits are long (kSweepTiles tiles, 16k keys), the splits of one head are launched side by
// side and split s reads tile groups s, s + splits, ... instead of one contiguous range. With
// B=8, Hkv=8 (grouped queries, 64 blocks, 2 splits by rule 1), 16k / 64k keys: 1.003 /
// 1.003-1.004x against 0.997 / 0.999-1.001x for contiguous ranges. At B=8, H=32, 64k keys: 33
// contiguous ranges of one head side by side 1.001x, 33 interleaved splits in the plain order
// 0.995x, the two together 1.008x (S7-2). In the (B, L, H, D) layout the plain order already
// reads neighbouring memory (8 splits in sweep order there: 1.009x against 1.021x, S7-4).
template <typename Tr>
void plan_decode(AttnParams& p) {
    constexpr long kLongTiles = 32768 / Tr::kWarpN, kSweepTiles = 16384 / Tr::kWarpN, kLongSplits = 8;
    const long blocks = static_cast<long>(p.batch) * p.heads_q * ((p.len_q + Tr::kBlockM - 1) / Tr::kBlockM);
    const long tiles = (p.len_k + Tr::kWarpN - 1) / Tr::kWarpN;
    long splits = 1;
    if (blocks < p.num_sms) {
        const long by_sms = p.num_sms / std::max(1L, blocks);
        const long by_work = tiles / (2 * Tr::kNWarps);
        splits = std::max(1L, std::min({by_sms, by_work, 128L}));
    } else if (tiles >= kLongTiles) {
        splits = kLongSplits;
    }
    const bool head_major = p.heads_kv == 1 || (p.k_head_stride > p.k_row_stride && p.v_head_stride > p.v_row_stride);
    const long heads = static_cast<long>(p.batch) * p.heads_q;
    p.split_sweep = splits > 1 && head_major && tiles >= kSweepTiles && heads <= 65535;   // grid.z = batch x heads
    if (!p.split_sweep && p.batch * splits > 65535) splits = 1;                           // grid.z = batch x splits
    p.num_splits = static_cast<int>(splits);
}

}  // namespace decode
}  // namespace flashmin
