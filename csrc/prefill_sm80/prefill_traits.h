// prefill_traits.h: what the sm80 prefill kernel derives from a configuration (prefill_config.h).
//
// Cfg names the choices (kHeadDim, kBlockM, kBlockN, kNWarps, kQInRegs, kStages, kLazyRescale,
// kSwizzleKV); PrefillTraits<Cfg> adds the sizes that follow from them and checks what the kernel
// assumes. Plain C++: no device code.
#pragma once

namespace flashmin {
namespace sm80 {

template <typename Cfg>
struct PrefillTraits : Cfg {
    using Cfg::kHeadDim;       // compiled head dim; smaller ones (multiples of 8) are zero-padded
    using Cfg::kBlockM;        // query rows per block
    using Cfg::kBlockN;        // keys per tile
    using Cfg::kNWarps;
    // Q fragments held in registers for the whole kernel, or re-read from shared memory at each
    // k-step when O's accumulators need the room (large head dims, two slices per warp).
    using Cfg::kQInRegs;
    // K/V buffering. 1: one K and one V buffer; V_t is fetched during S = Q K_t^T and K_{t+1}
    // during O += P V_t (two barriers per tile; FlashAttention-2's scheme). 2: two (K, V) slots;
    // K_{t+1} and V_{t+1} are fetched while tile t is computed (one barrier per tile).
    using Cfg::kStages;
    // Lazy rescaling: a warp keeps its rows' running max (and skips rescaling O and l) until some
    // row's max has grown by more than 2^8 (kRescaleLog2, common/softmax.cuh), so P stays below
    // 256, far inside fp16 and bf16 range; the result is the same softmax, normalised by the same
    // max it was built on.
    using Cfg::kLazyRescale;
    // K/V tiles: padded like Q, or (kSwizzleKV) unpadded with 16-byte chunk c of row r stored at
    // chunk c ^ (r % 8): the 8 rows an ldmatrix reads still fall in distinct banks, and each 32-byte
    // sector of a global row lands in one aligned 32-byte sector of shared memory (with padding,
    // odd rows straddle sectors; in the decode kernel that cost 1.5x the L2 sector reads).
    using Cfg::kSwizzleKV;

    static constexpr int kThreads = 32 * kNWarps;
    static constexpr int kMT = kBlockM / (16 * kNWarps);  // 16-row MMA slices per warp
    static constexpr int kNT = kBlockN / 8;               // 8-key column tiles of S
    static constexpr int kDT = kHeadDim / 8;              // 8-wide column tiles of O
    static constexpr int kKS = kHeadDim / 16;             // k-steps of Q K^T
    static constexpr int kStride = kHeadDim + 8;          // shared-memory row stride (elements): +16 B of padding
    static constexpr int kSmemQ = kBlockM * kStride;
    static constexpr int kKVStride = kSwizzleKV ? kHeadDim : kStride;
    static constexpr int kSmemKV = kBlockN * kKVStride;
    static constexpr int kSmemBytes = (kSmemQ + 2 * kStages * kSmemKV) * 2;
    // K/V loads are plain cp.async (load_tile's default): no L2 prefetch-size hint (an L2::128B
    // hint measured no change on the H100, 2026-11-24) and no cache policy (every query block
    // re-reads the tiles: they should stay in L2).

    static_assert(kBlockM % (16 * kNWarps) == 0, "each warp owns whole 16-row MMA slices");
    static_assert(kStages == 1 || kStages == 2, "one or two K/V buffers");
    static_assert(!kSwizzleKV || kHeadDim % 64 == 0, "the swizzle permutes whole groups of 8 chunks (128 bytes)");
    static_assert(kBlockN % 16 == 0 && kHeadDim % 16 == 0, "ldmatrix.x4 loads two 8-wide tiles at a time");
};

}  // namespace sm80
}  // namespace flashmin
