// prefill_sm90_traits.h: the Hopper prefill kernel's compile-time configuration (PrefillTraits),
// with the measured reason beside each switch; the configurations each head dim runs, and why, are
// in prefill_sm90_hdim*.cu.
#pragma once

#include <cstdint>

namespace flashmin {
namespace sm90 {

// n rounded up to whole tiles of `tile` (the rows or keys a configuration computes for n).
inline int64_t padded_to(int n, int tile) { return (static_cast<int64_t>(n) + tile - 1) / tile * tile; }

template <int kHeadDim_, int kBlockN_, int kStages_, int kConsumers_, int kQStages_, bool kPingPong_ = false>
struct PrefillTraits {
    static constexpr int kHeadDim = kHeadDim_;   // compiled head dim; smaller ones arrive zero-padded by TMA
    static constexpr int kBlockN = kBlockN_;     // keys per K/V tile
    static constexpr int kStages = kStages_;     // K/V ring slots
    static constexpr int kConsumers = kConsumers_;   // math warpgroups, 64 query rows each
    // Q slots: with two, the next work tile's Q lands while this one computes (and this one's O
    // is stored from its slot); with one, the next Q waits for that store.
    static constexpr int kQStages = kQStages_;
    // O leaves through its Q slot and a bulk store with two Q slots; with one, every warp writes
    // its O rows straight to global memory, so the slot is free (for the next tile's Q) as soon
    // as the tile's last Q K^T has run.
    static constexpr bool kDirectO = kQStages == 1;
    // Ping-pong: the math warpgroups take turns to issue their products (named barriers
    // kSchedBarrier + w, in a ring), so that one warpgroup's softmax runs while another's
    // products keep the tensor cores busy (FlashAttention-3's inter-warpgroup schedule).
    static constexpr bool kPingPong = kPingPong_;
    // Lazy rescaling (common/softmax.cuh, softmax_rescale_lazy): O (kHeadDim / 2 floats a thread
    // per row half) is rescaled only in tiles where some row's max grew by more than 2^8. At head
    // dim 256 (128 multiplies a thread per tile saved) 1.00-1.08x over 1k-16k keys, 1.03-1.13x
    // from 4k (fp16 and bf16, H200, 2026-12-02, against the bench run before it); at head dims 64
    // and 128 no gain beyond the runs' noise and 3-4% lost at head dim 64 with causality up to 1k
    // keys (the branch and the vote cost more than the few skipped rescales of short rows), so
    // those rescale every tile. docs/perf-notes.md, "Hopper prefill v11".
    static constexpr bool kLazyRescale = kHeadDim >= 256;
    // The half tile: a warpgroup whose rows see nothing of a work tile's last key tile past its
    // first kBlockN / 2 keys (with causality the warpgroup above the diagonal of a 128-row tile, or
    // a short key tail) computes only those keys there: m64 x kBlockN/2 products and half the
    // exponentials. Switched per call in one process (H200, 2026-12-02, fp16; docs/perf-notes.md,
    // "Hopper prefill v13"): at head dim 64 1.09x at 128 causal queries and 0.99-1.03x from 256
    // to 16k; at head dim 128 0.93x / 0.97x at 256 / 512 causal queries, 1.00-1.01x from 1k. So
    // head dim 64 only, and two math warpgroups only: with three (160 registers a thread) the
    // half tile's S and P beside the whole tile's made ptxas spill and serialize the wgmma.
    static constexpr bool kHalfTile = kBlockN == 128 && kHeadDim == 64 && kConsumers == 2;
    // Math warpgroups whose 64 rows hold no queries (the last query block of a length that is not
    // a multiple of the tile) skip the work tile's products and softmax: with three (192-row
    // tiles, head dim 64) a third to two thirds of such a tile. Not with two: the runtime
    // warpgroup count cost the hdim 128 kernel's key-tile loop 23 instructions (696 -> 719); nor
    // in the sequential schedule (the ladder's rung), whose general kernel with a mask then spilt.
    static constexpr bool kSkipIdle = kConsumers == 3 && kPingPong;
    // The persistent walk's last rounds by the host's plan (TileTail, below), switched per call in
    // one process (H200, 2026-12-03, three runs; docs/perf-notes.md, "Hopper prefill v16"): at
    // head dim 64 causal 512 / 1k / 2k / 4k queries 1.017-1.023x / 1.006-1.020x / 1.013-1.016x /
    // 1.000-1.019x, causal 256 0.988-1.000x, non-causal 0.994-1.012x; at head dim 128 causal
    // 512-4k 0.947-0.982x with six rounds and 0.974-1.023x with two; at head dim 256 causal 1k-4k
    // 0.979-1.007x with two to six (fp16). So head dim 64 only.
    static constexpr bool kPlanTail = kHeadDim == 64;
    static constexpr int kSchedBarrier = 8;
    static constexpr int kBlockM = 64 * kConsumers;
    static constexpr int kThreads = 128 * (kConsumers + 1);
    static constexpr int kPanels = kHeadDim / 64;   // 64-column (128-byte) swizzle panels per row
    static constexpr int kQElems = kBlockM * kHeadDim;
    static constexpr int kKVElems = kBlockN * kHeadDim;
    static constexpr uint32_t kKVBytes = kKVElems * 2;
    // Q, then K slots, then V slots (each a multiple of 1024 bytes, so every panel keeps the
    // swizzle's 1024-byte alignment), then the barriers. The base is declared 1024-byte aligned
    // (the kernel checks it once): aligning it at run time cost the key-tile loops up to 48
    // instructions, ptxas recomputing the offset in every iteration.
    static constexpr int kBarriers = 2 * kQStages + 4 * kStages;
    static constexpr int kSmemBytes = (kQStages * kQElems + 2 * kStages * kKVElems) * 2 + kBarriers * 8;
    // setmaxnreg: the producer keeps 24-32 registers, the math warpgroups share the rest of the
    // 64K-register file (240 each for two, 160 each for three).
    static constexpr int kProducerRegs = kConsumers == 2 ? 24 : 32;
    static constexpr int kConsumerRegs = kConsumers == 2 ? 240 : 160;
    static_assert(kHeadDim % 64 == 0 && kBlockN % 16 == 0 && kBlockN % 8 == 0, "whole swizzle panels, whole k-steps of P V");
    static_assert(kConsumers == 2 || kConsumers == 3, "two or three math warpgroups");
    static_assert(kQStages == 1 || kQStages == 2, "one or two Q slots");
    static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumers <= 65536, "the register file");
    static_assert(kSmemBytes <= 227 * 1024, "shared memory per block");
};

}  // namespace sm90
}  // namespace flashmin
