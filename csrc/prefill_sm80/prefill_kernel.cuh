// prefill_kernel.cuh: the sm80 prefill kernel (fp16/bf16, mma.sync m16n8k16, fp32 accumulate).
//
// FlashAttention-2's algorithm on sm80+ tensor cores:
// - one block per (kBlockM query rows, head, batch); each warp owns kMT 16-row slices and keeps its
//   Q fragments in registers (or re-reads them from shared memory, kQInRegs = false);
// - K and V tiles of kBlockN keys stream through shared memory with cp.async: with two slots
//   (kStages = 2) tile t+1 is fetched while tile t is computed; with one, V_j is fetched while
//   S = Q K_j^T and its softmax run, K_{j+1} while O += P V_j runs;
// - optionally lazy rescaling (kLazyRescale): O and l are rescaled only when a row max has grown
//   by more than 2^8;
// - the online softmax stays in registers (base 2, the scale folded into one FFMA before exp2), and
//   P is repacked in registers as the A operand of the second product: S never touches memory;
// - one normalisation at the end; O leaves through shared memory as 16-byte stores.
// Tr: PrefillTraits<PrefillConfig<kHeadDim>> (prefill_traits.h, prefill_config.h).
// Shared-memory rows are padded by 16 bytes, or (K/V with kSwizzleKV) unpadded and XOR-swizzled,
// so the 8 rows an ldmatrix reads fall in distinct banks.
// Masking work (ragged tails, the causal diagonal, attn_mask) runs only on tiles that need it.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/ptx.cuh"
#include "common/softmax.cuh"
#include "common/tiles.cuh"
#include "common/warp_gemm.cuh"
#include "prefill_sm80/prefill_traits.h"

namespace flashmin {
namespace sm80 {

// ---- the kernel ---------------------------------------------------------------------------------

// kGeneral: the general, element-by-element path (attn_mask, softcap, ALiBi, a window's left side:
// common/softmax.cuh); without it the kernel carries no such code at all. A window's right side
// and attention sinks need no flag: the causal limit and the last normalisation serve them.
template <typename Tr, typename T, bool kGeneral>
__global__ void __launch_bounds__(Tr::kThreads) prefill_kernel(const AttnParams p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sQ = reinterpret_cast<T*>(smem_raw);   // kBlockM x kStride (later: the O tile on its way out)
    T* sK = sQ + Tr::kSmemQ;                   // kBlockN x kKVStride, slot 0 (slot s: + s * 2 * kSmemKV)
    T* sV = sK + Tr::kSmemKV;                  // kBlockN x kKVStride, slot 0
    constexpr uint32_t kSlotBytes = 2 * Tr::kSmemKV * sizeof(T);

    // Heavy (late, causal) query blocks first: they set the kernel's tail.
    const int m_block = gridDim.x - 1 - blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = m_block * Tr::kBlockM;
    const int warp_row0 = warp * Tr::kMT * 16;   // first row of this warp within the block

    const BlockInfo blk(p, b, h, kGeneral);
    if (kGeneral && row0 >= blk.len_q) return;   // packed sequences: this sequence is shorter than the grid's
    const int len_q = blk.len_q;
    const KeyRange keys = blk.keys(p);
    const int N = keys.len_k, offset = keys.causal_offset;
    // Key tiles [t_begin, t_end) of this block: those above the causal diagonal and those wholly
    // before the window of every row are never read.
    int t_end = (keys.end(p, row0, Tr::kBlockM) + Tr::kBlockN - 1) / Tr::kBlockN;
    int t_begin = min(t_end, keys.begin(p, row0) / Tr::kBlockN);
    if constexpr (kGeneral) narrow_by_mask(p, b, h, row0, Tr::kBlockM, Tr::kBlockN, t_begin, t_end);   // a bool mask's range

    const T* gQ = blk.q<T>(p);
    const T* gK = blk.k<T>(p);
    const T* gV = blk.v<T>(p);
    // Keys [j0, j0 + kBlockN) of K (is_v: of V) into dst; a paged cache (general path only) finds
    // each row through block_table.
    auto load_kv = [&](T* dst, bool is_v, int j0) {
        if constexpr (kGeneral) {
            if (p.block_table != nullptr) {
                load_tile_paged<Tr, Tr::kBlockN, Tr::kSwizzleKV, Tr::kThreads>(
                    dst, is_v ? gV : gK, is_v ? p.v_page_stride : p.k_page_stride, is_v ? p.v_row_stride : p.k_row_stride,
                    p.block_table + b * p.block_table_stride, p.page_shift, j0, N, p.head_dim);
                return;
            }
        }
        load_tile<Tr, Tr::kBlockN, Tr::kSwizzleKV, Tr::kThreads>(dst, is_v ? gV : gK, is_v ? p.v_row_stride : p.k_row_stride, j0, N,
                                                                 p.head_dim);
    };

    load_tile<Tr, Tr::kBlockM, false, Tr::kThreads>(sQ, gQ, p.q_row_stride, row0, len_q, p.head_dim);
    if (t_begin < t_end) {
        const int j_first = t_begin * Tr::kBlockN;
        load_kv(sK, false, j_first);
        if constexpr (Tr::kStages == 2) load_kv(sV, true, j_first);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // ldmatrix lane addressing (common/warp_gemm.cuh). Q (A operand): row lane % 16, column
    // (lane / 16) * 8. K and V: matrix mi = lane / 8 of the x4 load reads row (mi / 2) * 8 + mr of K,
    // (mi % 2) * 8 + mr of V; in padded tiles the lane's chunk is part of its address, in swizzled
    // ones the lane's row is mr modulo 8, so its chunk 2 ks + c is stored at (2 ks) ^ (c ^ mr): a
    // per-lane XOR (k_xor, v_xor) of a compile-time even chunk.
    const int mi = lane / 8, mr = lane % 8;
    const uint32_t q_lane = smem_addr(&sQ[(warp_row0 + lane % 16) * Tr::kStride + (lane / 16) * 8]);
    constexpr bool kSwz = Tr::kSwizzleKV;
    const uint32_t k_lane = smem_addr(&sK[((mi / 2) * 8 + mr) * Tr::kKVStride + (kSwz ? 0 : (mi % 2) * 8)]);
    const uint32_t v_lane = smem_addr(&sV[((mi % 2) * 8 + mr) * Tr::kKVStride + (kSwz ? 0 : (mi / 2) * 8)]);
    const uint32_t k_xor = (mi % 2) ^ mr, v_xor = (mi / 2) ^ mr;
    constexpr uint32_t kRowBytes = Tr::kStride * sizeof(T);      // Q (and the O staging)
    constexpr uint32_t kKVRowBytes = Tr::kKVStride * sizeof(T);

    // Q fragments, held in registers for the whole kernel where they fit.
    uint32_t qf[Tr::kMT][Tr::kQInRegs ? Tr::kKS : 1][4];
    if constexpr (Tr::kQInRegs) {
#pragma unroll
        for (int mt = 0; mt < Tr::kMT; ++mt)
#pragma unroll
            for (int ks = 0; ks < Tr::kKS; ++ks)
                ldmatrix_x4(qf[mt][ks], q_lane + mt * 16 * kRowBytes + ks * 32);
    }

    float o[Tr::kMT][Tr::kDT][4];
    float m_run[Tr::kMT][2], l_run[Tr::kMT][2];   // per row: [mt][0] row lane/4, [mt][1] row lane/4 + 8
#pragma unroll
    for (int mt = 0; mt < Tr::kMT; ++mt) {
#pragma unroll
        for (int dt = 0; dt < Tr::kDT; ++dt) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.f;
        m_run[mt][0] = m_run[mt][1] = -INFINITY;
        l_run[mt][0] = l_run[mt][1] = 0.f;
    }

    // Scores are kept raw and scaled inside exp2 (one FFMA), unless the general path must act on
    // scaled scores first (common/softmax.cuh: scale_scores_first).
    const bool scale_first = scale_scores_first(p, kGeneral);
    const float sl = score_log2_factor(p, kGeneral);   // exp2 argument = (s - m) * sl
    const ScoreMod mod(p, b, h, keys.diag_offset);
    const bool lower = p.has_window_left;   // only ever set with kGeneral (general_path)
    const int lower_offset = keys.lower_offset;

    for (int t = t_begin; t < t_end; ++t) {
        const int j0 = t * Tr::kBlockN;
        const int slot = Tr::kStages == 2 ? (t - t_begin) & 1 : 0;
        // One stage: K_t has landed, every warp is done with V_{t-1}; fetch V_t now.
        // Two stages: K_t and V_t have landed, every warp is done with tile t-1 (the other slot);
        // fetch tile t+1 into it.
        if (t > t_begin) { cp_async_wait_all(); __syncthreads(); }
        if constexpr (Tr::kStages == 1) {
            load_kv(sV, true, j0);
        } else if (t + 1 < t_end) {
            const int next = (slot ^ 1) * 2 * Tr::kSmemKV;
            load_kv(sK + next, false, j0 + Tr::kBlockN);
            load_kv(sV + next, true, j0 + Tr::kBlockN);
        }
        cp_async_commit();

        // S = Q K_t^T.
        const uint32_t k_base = opaque(k_lane + slot * kSlotBytes), q_base = opaque(q_lane);
        float s[Tr::kMT][Tr::kNT][4];
        warp_qk<T, Tr::kKS, Tr::kQInRegs, kRowBytes, kKVRowBytes, kSwz>(s, qf, q_base, k_base, k_xor);

        // The general path (attn_mask, softcap, ALiBi; and, when the scale goes first, the scale),
        // element by element.
        if (kGeneral || scale_first) {
#pragma unroll
            for (int mt = 0; mt < Tr::kMT; ++mt)
                scale_and_mask<kGeneral>(s[mt], p, b, h, row0 + warp_row0 + mt * 16, j0, N, scale_first, lane, mod);
        }
        // Keys past N, above the causal diagonal or before a row's window, only on tiles that have
        // any: per row the limits, then compares per element against a compile-time column.
        const bool ragged = j0 + Tr::kBlockN > N || (p.is_causal && j0 + Tr::kBlockN - 1 > row0 + offset) ||
                            (lower && j0 < row0 + Tr::kBlockM - 1 + lower_offset);
        if (ragged && !lower) {
#pragma unroll
            for (int mt = 0; mt < Tr::kMT; ++mt) hide_keys(s[mt], row0 + warp_row0 + mt * 16, j0, N, p.is_causal, offset, lane);
        } else if (kGeneral && ragged) {   // its own copy, in the general path only
#pragma unroll
            for (int mt = 0; mt < Tr::kMT; ++mt)
                hide_keys(s[mt], row0 + warp_row0 + mt * 16, j0, N, p.is_causal, offset, lane, true, lower_offset);
        }

        // Online softmax: new row max, rescale the running state, P = exp2((S - m) * sl).
        float mx[Tr::kMT][2];
        bool grow = false;
#pragma unroll
        for (int mt = 0; mt < Tr::kMT; ++mt)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                mx[mt][hf] = row_max(s[mt], hf, m_run[mt][hf]);
                // -inf running max (nothing seen yet): (mx - m) * sl is +inf or NaN; only +inf grows.
                if constexpr (Tr::kLazyRescale) grow |= (mx[mt][hf] - m_run[mt][hf]) * sl > kRescaleLog2;
            }
        // Lazy: the whole warp rescales together, or not at all (a warp-uniform branch).
        const bool rescale = !Tr::kLazyRescale || __any_sync(0xffffffffu, grow);
#pragma unroll
        for (int mt = 0; mt < Tr::kMT; ++mt)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) softmax_step(s[mt], o[mt], m_run[mt][hf], l_run[mt][hf], mx[mt][hf], hf, sl, rescale);

        if constexpr (Tr::kStages == 1) {
            cp_async_wait_all();   // V_t has landed
            __syncthreads();       // ... and every warp is done reading K_t
            if (t + 1 < t_end) load_kv(sK, false, j0 + Tr::kBlockN);
            cp_async_commit();
        }

        // O += P V_t, P straight from the S accumulators.
        warp_pv<T, kKVRowBytes, kSwz>(o, s, opaque(v_lane + slot * kSlotBytes), v_xor);
    }
    cp_async_wait_all();

    // O = O / l (with a sink, its term joins l: common/softmax.cuh finish_row); a row that saw no
    // key has l = 0 and O = 0. Stage this warp's rows in sQ (only this warp ever read them), then
    // 16-byte stores to global memory. The __syncwarp orders the staging
    // writes after every lane's last ldmatrix read of those Q rows (at each k-step of the last tile
    // when Q is re-read from shared memory, at the start otherwise): without it a lane may write a
    // row another lane of the warp is still reading.
    T* gO = blk.o<T>(p);
    float* gL = p.lse + blk.lse_row0(p);
    const float sink = sink_log2(p, h);
    __syncwarp();
#pragma unroll
    for (int mt = 0; mt < Tr::kMT; ++mt) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
            const RowEnd end = finish_row(m_run[mt][hf] * sl, quad_sum(l_run[mt][hf]), sink);
            const float inv = end.o_scale;
            const int r = warp_row0 + mt * 16 + lane / 4 + hf * 8;
#pragma unroll
            for (int dt = 0; dt < Tr::kDT; ++dt)
                *reinterpret_cast<uint32_t*>(&sQ[r * Tr::kStride + dt * 8 + (lane % 4) * 2]) =
                    pack2<T>(o[mt][dt][2 * hf] * inv, o[mt][dt][2 * hf + 1] * inv);
            if (lane % 4 == 0 && row0 + r < len_q) gL[row0 + r] = end.lse;
        }
    }
    __syncwarp();
    constexpr int kChunks = Tr::kHeadDim / 8;
#pragma unroll
    for (int idx = lane; idx < Tr::kMT * 16 * kChunks; idx += 32) {
        const int r = warp_row0 + idx / kChunks, c = idx % kChunks;
        if (row0 + r < len_q && c * 8 < p.head_dim)
            *reinterpret_cast<uint4*>(&gO[(row0 + r) * p.o_row_stride + c * 8]) =
                *reinterpret_cast<const uint4*>(&sQ[r * Tr::kStride + c * 8]);
    }
}

}  // namespace sm80
}  // namespace flashmin
