// common/warp_gemm.cuh: one warp's two products against a K/V tile in shared memory (mma.sync
// m16n8k16, fp32 accumulators), shared by the sm80 prefill and the decode kernel.
//
//   warp_qk: S = Q K^T for the warp's kMT 16-row slices of Q against kNT 8-key column tiles;
//   warp_pv: O += P V with P taken straight from the S accumulators (the C layout of two 16x8
//            tiles is the A layout of one 16x16 tile), so S never touches memory.
//
// The caller sets up the ldmatrix lane addresses once per kernel (k_base, v_base: this lane's row
// of the tile, as a shared-memory byte address) and passes them through opaque() each tile, so that
// the fragment addresses below are register + constant. K (B operand, two key tiles per ldmatrix.x4):
// matrix mi = lane / 8 covers keys (mi / 2) * 8 + lane % 8 and 16-byte chunk mi % 2 of the k-step;
// V (B operand through .trans, two head-dim tiles): keys (mi % 2) * 8 + lane % 8, chunk mi / 2.
// In a padded tile the lane's chunk is part of its base address; in an XOR-swizzled one (chunk c of
// row r stored at c ^ (r % 8)) it is a per-lane XOR, k_xor = (mi % 2) ^ (lane % 8) (v_xor with
// mi / 2), of the compile-time even chunk.
#pragma once

#include <cstdint>

#include "common/ptx.cuh"
#include "common/softmax.cuh"

namespace flashmin {

// Byte offset, within a K/V row, of this lane's 16-byte chunk of the chunk pair that starts at the
// (even) chunk `even_chunk`.
template <bool kSwizzled>
__device__ __forceinline__ uint32_t kv_chunk_offset(int even_chunk, uint32_t lane_xor) {
    return kSwizzled ? ((static_cast<uint32_t>(even_chunk) ^ lane_xor) * 16) : static_cast<uint32_t>(even_chunk) * 16;
}

// s = Q K^T over kKS k-steps of 16 head-dim columns. Q's A fragments are held in qf[mt][ks] for the
// whole kernel (kQInRegs), or re-read into qf[mt][0] from shared memory (q_base: this lane's Q row,
// kQRowBytes per row) at each k-step when O's accumulators need the registers.
template <typename T, int kKS, bool kQInRegs, uint32_t kQRowBytes, uint32_t kKRowBytes, bool kSwizzled, int kMT, int kNT,
          int kQF>
__device__ __forceinline__ void warp_qk(float (&s)[kMT][kNT][4], uint32_t (&qf)[kMT][kQF][4], uint32_t q_base, uint32_t k_base,
                                        uint32_t k_xor) {
    static_assert(kNT % 2 == 0, "ldmatrix.x4 loads two 8-key tiles at a time");
    static_assert(kQF == (kQInRegs ? kKS : 1), "Q fragments: every k-step in registers, or one re-read at a time");
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kKS; ++ks) {
        const int qs = kQInRegs ? ks : 0;
        if constexpr (!kQInRegs) {
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) ldmatrix_x4(qf[mt][0], q_base + mt * 16 * kQRowBytes + ks * 32);
        }
#pragma unroll
        for (int np = 0; np < kNT / 2; ++np) {
            uint32_t kb[4];   // B fragments of key tiles 2np (kb[0..1]) and 2np+1 (kb[2..3])
            ldmatrix_x4(kb, k_base + np * 16 * kKRowBytes + kv_chunk_offset<kSwizzled>(2 * ks, k_xor));
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) {
                mma_16816<T>(s[mt][2 * np], qf[mt][qs], kb[0], kb[1]);
                mma_16816<T>(s[mt][2 * np + 1], qf[mt][qs], kb[2], kb[3]);
            }
        }
    }
}

// o += P V, P = s (already exponentiated) packed to T in registers, over the tile's kNT * 8 keys.
template <typename T, uint32_t kVRowBytes, bool kSwizzled, int kMT, int kNT, int kDT>
__device__ __forceinline__ void warp_pv(float (&o)[kMT][kDT][4], const float (&s)[kMT][kNT][4], uint32_t v_base, uint32_t v_xor) {
    static_assert(kNT % 2 == 0 && kDT % 2 == 0, "ldmatrix.x4.trans loads two 8-wide head-dim tiles of 16 keys at a time");
#pragma unroll
    for (int kk = 0; kk < kNT / 2; ++kk) {
        uint32_t pa[kMT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) pack_p<T>(s[mt], kk, pa[mt]);
#pragma unroll
        for (int dp = 0; dp < kDT / 2; ++dp) {
            uint32_t vb[4];   // B fragments of head-dim tiles 2dp (vb[0..1]) and 2dp+1 (vb[2..3])
            ldmatrix_x4_trans(vb, v_base + kk * 16 * kVRowBytes + kv_chunk_offset<kSwizzled>(2 * dp, v_xor));
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) {
                mma_16816<T>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
                mma_16816<T>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
            }
        }
    }
}

}  // namespace flashmin
