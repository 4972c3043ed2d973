// decode_traits.h: what the decode kernel derives from a configuration (decode_config.h).
//
// Cfg names the choices (kHeadDim, kWarpN, kStages, kNWarps); DecodeTraits<Cfg> adds the sizes
// that follow from them and checks what the kernel assumes. Plain C++ (no device code): the host
// planner (decode_plan.cu) reads the tile shape from here too.
#pragma once

namespace flashmin {
namespace decode {

template <typename Cfg>
struct DecodeTraits : Cfg {
    using Cfg::kHeadDim;   // compiled head dim; smaller multiples of 8 are zero-padded
    using Cfg::kWarpN;     // keys per tile (one warp computes one tile at a time)
    using Cfg::kStages;    // ring slots per warp
    using Cfg::kNWarps;
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

}  // namespace decode
}  // namespace flashmin
