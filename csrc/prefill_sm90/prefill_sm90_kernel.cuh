// prefill_sm90_kernel.cuh: the Hopper prefill kernel (sm_90a: TMA, mbarriers, wgmma, setmaxnreg).
//
// The same algorithm as the sm80 kernel (FlashAttention-2's online softmax, csrc/common/softmax.cuh),
// on Hopper's own machinery:
// - work tiles of kBlockM = 64 x kConsumers query rows of one (head, batch); a block is 1 + kConsumers
//   warpgroups: warpgroup 0 is the producer (one thread issues every copy, the others leave at
//   once), the others are the consumers, 64 query rows each. setmaxnreg moves registers from the
//   producer to the consumers. The grid is persistent (one block per SM looping over tiles) or one
//   block per tile (the launcher chooses, prefill_sm90_hdim*.cu).
// - the copy engine (TMA) brings Q into one of kQStages slots and K/V tiles of kBlockN keys into a
//   ring of kStages slots, completing on "full" mbarriers; the consumers free a slot on its "empty"
//   barrier once their wgmma have read it. The ring runs on across work tiles, so the next tile's
//   first K/V land while this one finishes. Tiles are stored with the 128-byte swizzle in
//   64-column panels; rows and columns outside the tensor (ragged lengths, head dims below the
//   compiled one) arrive as zeros, so the tails cost nothing extra.
// - S = Q K^T: wgmma m64 x kBlockN x 16, both operands in shared memory; softmax in registers
//   (the accumulators are in the m16n8 layout the sm80 helpers use); O += P V: wgmma m64 x
//   kHeadDim x 16 with P from registers and V read transposed from shared memory. Inside a
//   warpgroup S_{t+1} = Q K_{t+1}^T is issued before P_t V_t, so the softmax of one tile runs
//   while the tensor cores compute. Across warpgroups (kPingPong, the default) the math
//   warpgroups take turns, on named barriers, to issue an iteration's two products, so one
//   warpgroup's softmax runs while another's products keep the tensor cores busy.
// - the half tile (PrefillTraits::kHalfTile): where a warpgroup's rows see only the first half of
//   a work tile's last key tile (the warpgroup above the diagonal, with causality), it computes
//   that half alone, with m64 x kBlockN/2 products.
// - idle warpgroups (PrefillTraits::kSkipIdle): with three math warpgroups, those whose rows of
//   the last query block hold no queries compute nothing there; they only keep the ring's phases
//   in step. The persistent walk over the tiles (TileWalk) turns where such light tiles would
//   otherwise fall to the same blocks in every round; at head dim 64 its last rounds follow a
//   plan made on the host from the tiles' costs (TileTail).
// - O is normalised once and leaves through the tile's Q slot and a bulk tensor store (two Q
//   slots), or straight from registers (one slot); rows past len_q are not written. LSE goes
//   straight to global memory.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>
#include <type_traits>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/fast_div.cuh"
#include "common/launch.cuh"
#include "common/ptx.cuh"
#include "common/ptx_sm90.cuh"
#include "common/softmax.cuh"
#include "common/switch.h"
#include "common/wgmma.cuh"

namespace flashmin {
namespace sm90 {

// The four tensor maps of a call (made on the host by the launcher below).
struct TmaMaps {
    CUtensorMap q, k, v, o;
};

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

// The key columns of a score array float[kNT][4] and of P's A fragments uint32_t[kKT][4] (a whole
// tile's or a half tile's: PrefillTraits::kHalfTile).
template <typename A> constexpr int score_cols = static_cast<int>(std::extent<std::remove_reference_t<A>>::value) * 8;
template <typename A> constexpr int p_cols = static_cast<int>(std::extent<std::remove_reference_t<A>>::value) * 16;

// wgmma shapes by N (the generated wrappers, csrc/common/wgmma.cuh).
template <int kN, typename T>
__device__ __forceinline__ void mma_ss(float (&d)[kN / 8][4], uint64_t da, uint64_t db, int scale_d) {
    if constexpr (kN == 64) wgmma_ss_m64n64k16<T>(d, da, db, scale_d);
    else if constexpr (kN == 80) wgmma_ss_m64n80k16<T>(d, da, db, scale_d);
    else if constexpr (kN == 128) wgmma_ss_m64n128k16<T>(d, da, db, scale_d);
    else if constexpr (kN == 176) wgmma_ss_m64n176k16<T>(d, da, db, scale_d);
    else if constexpr (kN == 192) wgmma_ss_m64n192k16<T>(d, da, db, scale_d);
    else { static_assert(kN == 256, "a generated wgmma shape"); wgmma_ss_m64n256k16<T>(d, da, db, scale_d); }
}
template <int kN, typename T>
__device__ __forceinline__ void mma_rs(float (&d)[kN / 8][4], const uint32_t (&a)[4], uint64_t db, int scale_d) {
    if constexpr (kN == 64) wgmma_rs_m64n64k16<T>(d, a, db, scale_d);
    else if constexpr (kN == 128) wgmma_rs_m64n128k16<T>(d, a, db, scale_d);
    else { static_assert(kN == 256, "a generated wgmma shape"); wgmma_rs_m64n256k16<T>(d, a, db, scale_d); }
}

// Work tiles: (query block, head, batch), the heaviest query blocks (late rows, causal) first.
// A persistent block takes one tile of each round of gridDim.x tiles, in a snake order (block c
// takes the c-th tile of even rounds and the c-th from the end of odd ones), so that with
// causality no block collects only the heavy ends of the rounds. Static round robin left blocks
// up to 13% apart in work at hdim 128, N = 16k (2026-12-01, H200).
// Where a head's query blocks divide the grid (6 of 192 rows at 1024 queries on 132 SMs), every
// round holds the same query blocks at the same places, so the light last block of each head
// (rows partly past the queries, whose idle warpgroups skip it: PrefillTraits::kSkipIdle) would
// fall to the same few blocks in every round. There (TileDivs::rotate) the places turn by one
// block every pair of rounds. H200, 2026-12-02, fp16, switched per call beside cuDNN: the skip
// and the turning together against neither, hdim 64 non-causal 512 / 1024 / 2048 queries 1.07x /
// 1.06x / 1.01x (each alone 0.99-1.01x), causal 2048 1.06x; turning against not, by the rule
// (docs/results/2026-12-02-h200-1919431, ab-rot-fp16.txt), 1.03x / 1.03x / 1.05x at non-causal 512 /
// 1024 and causal 2048. Without light tiles turning lost: 4.5% / 1.3% at hdim 64 causal 256 / 512,
// 1.7% at hdim 128 causal 256, 9% at hdim 128 causal 2048, where the snake's heavy-light pairs
// balance better than tile_balance.py's model says.
// The place is carried from round to round: a modulo by gridDim.x per tile moved ptxas's
// schedule of the hdim 128 key-tile loop (693 instructions -> 711; 696 carried).
// The walk's last rounds can follow a plan made on the host (TileTail, plan_tile_tail in
// prefill_sm90.cu): where tiles differ in cost (causality), the snake leaves some blocks a heavy
// last tile while others are done, and the plan gives the last rounds' tiles out heaviest first,
// each to the block with the least work so far (counting the snake's rounds before it). It is a
// kernel parameter, so a CUDA graph captures it with the launch; the producer and the math
// warpgroups read the same entries, so nothing passes between them and no counter is shared
// between launches. Head dim 64 only (PrefillTraits::kPlanTail).
constexpr int kTailEntries = 1024;
constexpr uint16_t kTailNone = 0xffff;
struct TileTail {
    int round0;   // the snake's rounds before the plan (without a plan: all of them)
    int rounds;   // the walk's rounds: round0 + the plan's rows
    int base;     // the tile index of plan entry 0 (round0 * gridDim.x)
    uint16_t t[kTailEntries];   // row j of block c: tile base + t[j * gridDim.x + c], or kTailNone
};
struct TileWalk {
    int round = 0;
    int place = static_cast<int>(blockIdx.x);   // this block's place in the round, before the snake's turn
    // The tile of this round (num_tiles or more: none).
    __device__ __forceinline__ int tile(const TileTail& tt) const {
        const int g = gridDim.x;
        if (round >= tt.round0) {
            const int e = tt.t[(round - tt.round0) * g + static_cast<int>(blockIdx.x)];
            return e == kTailNone ? INT_MAX : tt.base + e;
        }
        return round * g + ((round & 1) ? g - 1 - place : place);
    }
    __device__ __forceinline__ void next(int rotate) {
        if (rotate && (round & 1) && ++place == static_cast<int>(gridDim.x)) place = 0;
        ++round;
    }
};
struct TileInfo {
    int m_block, h, b;
    KeyRange keys;          // this batch row's key count and the limits of its rows (KeyRange)
    int t_begin, t_end;     // the K/V tiles to read: [t_begin, t_end)
    // The tensor-map coordinates of the tile's first query row and of key 0, and the batch
    // coordinate (packed sequences: rows of one batch row, BlockInfo's q_start / k_start).
    int q_row0, k_row0, map_b, kv_map_b;
    int len_q;              // this batch row's queries
    // Math warpgroups whose 64 rows hold queries: the first `active` ones (fewer than all in the
    // last query block of a length that is not a multiple of the tile). The others skip the tile.
    int active;
};

// The divisors of a work-tile index, fixed for the kernel and made on the host (common/fast_div.cuh):
// query blocks per head, query heads, and query heads per kv head. A block decodes a tile index per
// tile in every thread; with these that is three multiply-highs instead of three integer divisions.
// And whether the tile walk turns (TileWalk).
struct TileDivs {
    FastDiv num_m, heads, group;
    int rotate;   // 1: the walk turns (a light last query block, and query blocks that divide the grid: TileWalk)
};

// Tile index -> (query block, head, batch): a head's query blocks side by side, its last
// (heaviest, with causality) first.
template <int kBlockM, int kBlockN, bool kGeneral, bool kMask>
__device__ __forceinline__ TileInfo tile_info(const AttnParams& p, int tile, const TileDivs& dv) {
    const int num_m = static_cast<int>(dv.num_m.d);
    const int bh_idx = dv.num_m.div(tile);
    const int m_idx = dv.num_m.mod(tile, bh_idx);
    TileInfo ti;
    ti.m_block = num_m - 1 - m_idx;
    ti.b = dv.heads.div(bh_idx);
    ti.h = dv.heads.mod(bh_idx, ti.b);
    const BlockInfo bi(p, ti.b, ti.h, kGeneral);
    ti.keys = bi.keys(p);
    ti.len_q = bi.len_q;
    ti.q_row0 = bi.q_start + ti.m_block * kBlockM;
    ti.k_row0 = bi.k_start;
    ti.map_b = bi.packed ? 0 : ti.b;
    ti.kv_map_b = bi.packed ? 0 : bi.kb;   // kv_batch_idx: the cache row
    ti.t_end = (ti.keys.end(p, ti.m_block * kBlockM, kBlockM) + kBlockN - 1) / kBlockN;
    ti.t_begin = min(ti.t_end, ti.keys.begin(p, ti.m_block * kBlockM) / kBlockN);
    if (ti.m_block * kBlockM >= ti.len_q) ti.t_begin = ti.t_end;   // packed: past this sequence's rows
    ti.active = min(kBlockM / 64, max(0, (ti.len_q - ti.m_block * kBlockM + 63) / 64));
    if constexpr (kMask) narrow_by_mask(p, ti.b, ti.h, ti.m_block * kBlockM, kBlockM, kBlockN, ti.t_begin, ti.t_end);
    return ti;
}

// kGeneral: attn_mask, softcap, ALiBi and a window's left side (the general path of
// common/softmax.cuh). A window's right side and attention sinks need no flag. kMask (only with
// kGeneral): the attn_mask code; without it, the general instantiation for calls with no mask.
template <typename Tr, typename T, bool kGeneral, bool kMask>
__global__ void __launch_bounds__(Tr::kThreads, 1)
prefill_sm90_kernel(const __grid_constant__ AttnParams p, const __grid_constant__ TmaMaps maps, const TileDivs dv, int num_tiles,
                    const __grid_constant__ TileTail tt) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kStages = Tr::kStages;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    if ((smem_u32(smem_raw) & 1023) != 0) __trap();   // the swizzled panels need it; never seen
    unsigned char* base = smem_raw;
    T* sQ = reinterpret_cast<T*>(base);          // Q slot q at + q * kQElems: kPanels panels of kBlockM x 64 (later: O)
    T* sK = sQ + Tr::kQStages * Tr::kQElems;      // K slot s at + s * kKVElems: kPanels panels of kBlockN x 64
    T* sV = sK + kStages * Tr::kKVElems;
    uint64_t* bar_q = reinterpret_cast<uint64_t*>(sV + kStages * Tr::kKVElems);   // Q slot q has landed
    uint64_t* bar_q_free = bar_q + Tr::kQStages;  // every consumer has stored its O rows out of Q slot q
    uint64_t* bar_k = bar_q_free + Tr::kQStages;  // full: K slot s has landed
    uint64_t* bar_v = bar_k + kStages;
    uint64_t* bar_k_free = bar_v + kStages;       // empty: every consumer warp is done reading the slot
    uint64_t* bar_v_free = bar_k_free + kStages;

    if (threadIdx.x == 0) {
        for (int q = 0; q < Tr::kQStages; ++q) {
            mbar_init(bar_q + q, 1);
            mbar_init(bar_q_free + q, Tr::kDirectO ? 4 * Tr::kConsumers : Tr::kConsumers);
        }
        for (int s = 0; s < kStages; ++s) {
            mbar_init(bar_k + s, 1);
            mbar_init(bar_v + s, 1);
            mbar_init(bar_k_free + s, 4 * Tr::kConsumers);
            mbar_init(bar_v_free + s, 4 * Tr::kConsumers);
        }
        fence_barrier_init();
    }
    __syncthreads();

    // K/V tiles count across work tiles: the ring's slot and phase continue from one to the next.
    // The warpgroup, broadcast from lane 0 so that the compiler knows it is warp-uniform (values
    // derived from it, such as the half tile's branch, then leave the wgmma descriptors in uniform
    // registers).
    const int wg = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0);
    if (wg == 0) {
        // ---- producer: one thread issues every copy --------------------------------------------
        // Tile k's first K/V tiles are fetched as soon as slots free up, while the consumers still
        // finish tile k-1; its Q goes into Q slot k % kQStages once the O rows stored from that
        // slot (tile k - kQStages) have left it.
        regs_dealloc<Tr::kProducerRegs>();
        if (threadIdx.x == 0) {
            int it = 0;   // K/V tiles issued so far
            int k = 0;    // work tiles so far
            for (TileWalk walk; tt.rounds > walk.round; walk.next(dv.rotate)) {
                const int tile = walk.tile(tt);
                if (tile >= num_tiles) continue;
                const TileInfo ti = tile_info<kBlockM, kBlockN, kGeneral, kMask>(p, tile, dv);
                const int hk = dv.group.div(ti.h);
                auto load_q = [&] {
                    const int q = k % Tr::kQStages;
                    if (k >= Tr::kQStages) mbar_wait(bar_q_free + q, (k / Tr::kQStages - 1) & 1);
                    if (ti.t_begin == ti.t_end) { mbar_arrive(bar_q + q); return; }   // nothing to read: the phase completes empty
                    mbar_arrive_expect_tx(bar_q + q, Tr::kQElems * 2);
#pragma unroll
                    for (int c = 0; c < Tr::kPanels; ++c)
                        tma_load_4d(sQ + q * Tr::kQElems + c * kBlockM * 64, &maps.q, bar_q + q, c * 64, ti.q_row0, ti.h, ti.map_b);
                };
                if (ti.t_begin == ti.t_end) load_q();
                for (int t = ti.t_begin; t < ti.t_end; ++t, ++it) {
                    const int s = it % kStages;
                    const uint32_t phase = (it / kStages) & 1;
                    if (it >= kStages) mbar_wait(bar_k_free + s, phase ^ 1);
                    mbar_arrive_expect_tx(bar_k + s, Tr::kKVBytes);
#pragma unroll
                    for (int c = 0; c < Tr::kPanels; ++c)
                        tma_load_4d(sK + s * Tr::kKVElems + c * kBlockN * 64, &maps.k, bar_k + s, c * 64, ti.k_row0 + t * kBlockN, hk, ti.kv_map_b);
                    if (t == ti.t_begin) load_q();
                    if (it >= kStages) mbar_wait(bar_v_free + s, phase ^ 1);
                    mbar_arrive_expect_tx(bar_v + s, Tr::kKVBytes);
#pragma unroll
                    for (int c = 0; c < Tr::kPanels; ++c)
                        tma_load_4d(sV + s * Tr::kKVElems + c * kBlockN * 64, &maps.v, bar_v + s, c * 64, ti.k_row0 + t * kBlockN, hk, ti.kv_map_b);
                }
                ++k;
            }
        }
    } else {
        // ---- consumers: 64 query rows each ---------------------------------------------------
        regs_alloc<Tr::kConsumerRegs>();
        const int cw = wg - 1;                       // consumer index
        const int tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32;
        uint32_t q_addr = 0;   // this warpgroup's rows of panel 0 of the tile's Q slot
        int n_act = Tr::kConsumers;   // the work tile's active math warpgroups (TileInfo::active)
        // The O store of the last tile, until it has read its Q slot: then the slot is released.
        int pending_slot = -1;
        auto release_stored = [&] {
            if (pending_slot >= 0) {
                if (tid == 0) {
                    tma_store_wait_read();
                    mbar_arrive(bar_q_free + pending_slot);
                }
                pending_slot = -1;
            }
        };

        // Scores stay raw and are scaled inside exp2, unless the general path must act on scaled
        // scores first (common/softmax.cuh: scale_scores_first).
        const bool scale_first = scale_scores_first(p, kGeneral);
        const float sl = score_log2_factor(p, kGeneral);
        const bool lower = p.has_window_left;   // only ever set with kGeneral (general_path)

        float o[Tr::kHeadDim / 8][4];
        float m_run[2], l_run[2];

        // S = Q K^T of one ring slot, issued (not waited for): k-step ks reads 16 columns, panel
        // ks / 4 at byte 32 (ks % 4) of each row; the hardware applies the swizzle to the address.
        // sc holds the slot's kBlockN keys, or its first kBlockN / 2 (the half tile).
        auto issue_qk = [&](auto& sc, int slot) {
            constexpr int kN = score_cols<decltype(sc)>;
            const uint64_t qd = sw128_desc(q_addr, 16, 1024);
            const uint64_t kd = sw128_desc(smem_u32(sK + slot * Tr::kKVElems), 16, 1024);
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < Tr::kHeadDim / 16; ++ks) {
                const uint32_t col = (ks % 4) * 32;
                const uint64_t da = sw128_desc_at(qd, (ks / 4) * kBlockM * 128 + col);
                const uint64_t db = sw128_desc_at(kd, (ks / 4) * kBlockN * 128 + col);
                mma_ss<kN, T>(sc, da, db, ks > 0);
            }
            wgmma_commit();
        };
        // O += P V of one ring slot, issued: k-step kk reads keys 16 kk ..; V is MN-major (head dim
        // contiguous): 8 keys are 1024 bytes apart (sbo), 64-column panels kBlockN * 128 (lbo).
        // Per-batch key lengths: rows N .. len_k of the last tile hold whatever the cache holds
        // (possibly NaN, and 0 * NaN is NaN in P V): zero_v_tail, before the last tile's P V, has
        // the first consumer zero them (every consumer meets at the barrier). Packed sequences: the
        // next sequence's rows, or whatever follows the last one.
        auto zero_v_tail = [&](int slot, int j0, int N) {
            T* v_tile = sV + slot * Tr::kKVElems;
            if ((N < p.len_k || (kGeneral && p.cu_seqlens_q != nullptr)) && j0 + kBlockN > N) {
                if (cw == 0) {   // always active
                    const int r_first = max(0, N - j0);
                    const int chunks = (kBlockN - r_first) * 8;   // 16-byte chunks of one panel's rows
                    for (int c = 0; c < Tr::kPanels; ++c)
                        for (int idx = tid; idx < chunks; idx += 128)
                            reinterpret_cast<uint4*>(v_tile + c * kBlockN * 64 + r_first * 64)[idx] = make_uint4(0, 0, 0, 0);
                    fence_proxy_async();
                }
                named_sync(1, 128 * n_act);
            }
        };
        auto issue_pv = [&](const auto& pa, int slot) {
            const uint64_t vd = sw128_desc(smem_u32(sV + slot * Tr::kKVElems), kBlockN * 128, 1024);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < p_cols<decltype(pa)> / 16; ++kk) mma_rs<Tr::kHeadDim, T>(o, pa[kk], sw128_desc_at(vd, kk * 16 * 128), 1);
            wgmma_commit();
        };
        auto release = [&](uint64_t* bar) {
            __syncwarp();
            if (lane == 0) mbar_arrive(bar);
        };
        // Ping-pong turns: wait for this warpgroup's, then hand it to the next one, among the tile's
        // active math warpgroups (n_act; none where one computes alone). Between tiles the turn is
        // always warpgroup 0's: the last one of every tile hands it there.
        auto take_turn = [&] {
            if constexpr (Tr::kPingPong) {
                if (n_act > 1) named_sync(Tr::kSchedBarrier + cw, 256);
            }
        };
        auto pass_turn = [&] {
            if constexpr (Tr::kPingPong) {
                if (n_act > 1) named_arrive(Tr::kSchedBarrier + (cw + 1 == n_act ? 0 : cw + 1), 256);
            }
        };
        if (Tr::kPingPong && cw == Tr::kConsumers - 1) named_arrive(Tr::kSchedBarrier, 256);   // the first turn: warpgroup 0's
        // P as wgmma A fragments: key columns 16 kk .. 16 kk + 15 (the m16n8k16 A layout).
        auto pack_all = [&](const auto& sc, auto& pa) {
            static_assert(score_cols<decltype(sc)> == p_cols<decltype(pa)>, "P of the keys in hand");
#pragma unroll
            for (int kk = 0; kk < p_cols<decltype(pa)> / 16; ++kk) pack_p<T>(sc, kk, pa[kk]);
        };

        // The ring slot of the K/V tile in hand (the next one to wait for, between work tiles) and the
        // phase its barriers are in: the count of K/V tiles consumed, kept as slot and parity rather
        // than divided by kStages each time.
        int slot = 0;
        uint32_t phase = 0;
        auto advance = [&] {
            if (++slot == kStages) {
                slot = 0;
                phase ^= 1;
            }
        };
        int k = 0;    // work tiles so far
        for (TileWalk walk; tt.rounds > walk.round; walk.next(dv.rotate)) {
            const int tile = walk.tile(tt);
            if (tile >= num_tiles) continue;
            const TileInfo ti = tile_info<kBlockM, kBlockN, kGeneral, kMask>(p, tile, dv);
            if constexpr (Tr::kSkipIdle) n_act = ti.active;
            if (Tr::kSkipIdle && cw >= n_act) {
                // No query rows in this warpgroup's 64: it computes nothing, but still waits for
                // every K/V tile and the Q slot before it frees its share of them, as the others do.
                // An arrival before a slot holds this tile could count towards the slot's previous
                // use; and a warpgroup that let the ring run on without it could find a slot two
                // uses on, where its parity wait reads a later phase as this one.
                const int qs = k % Tr::kQStages;
                mbar_wait(bar_q + qs, (k / Tr::kQStages) & 1);
                for (int t = ti.t_begin; t < ti.t_end; ++t) {
                    mbar_wait(bar_k + slot, phase);
                    release(bar_k_free + slot);
                    mbar_wait(bar_v + slot, phase);
                    release(bar_v_free + slot);
                    advance();
                }
                release_stored();
                if constexpr (Tr::kDirectO) release(bar_q_free + qs);
                else pending_slot = qs;
                ++k;
                continue;
            }
            const int b = ti.b, h = ti.h, N = ti.keys.len_k, offset = ti.keys.causal_offset;
            const int lower_offset = ti.keys.lower_offset, t_begin = ti.t_begin, t_end = ti.t_end;
            const ScoreMod mod(p, b, h, ti.keys.diag_offset);
            const int wg_row0 = ti.m_block * kBlockM + cw * 64;   // this warpgroup's first query row
            const int warp_row0 = wg_row0 + warp * 16;          // this warp's 16-row slice (the helpers' row_base)
#pragma unroll
            for (int dt = 0; dt < Tr::kHeadDim / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
            m_run[0] = m_run[1] = -INFINITY;
            l_run[0] = l_run[1] = 0.f;

            // Mask and the online softmax of the tile at key j0: P = exp2((S - m) sl) in place, l
            // updated; alpha (per row half) is the factor O must take before P V is added, and the
            // result says whether O must take them (with lazy rescaling, PrefillTraits::kLazyRescale,
            // only when some row of the warp moved its reference max: otherwise every alpha is 1).
            auto softmax = [&](auto& sc, int j0, float (&alpha)[2]) {
                constexpr int kN = score_cols<decltype(sc)>;   // keys in hand: kBlockN, or half of it
                // off: ALiBi's part constant over a half-row, where the tile lies on one side of
                // every row's diagonal (scale_and_mask; always with flash_attn's causal alignment).
                float off[2] = {0.f, 0.f};
                if (kGeneral) {
                    const int side = mod.alibi ? alibi_side(mod, warp_row0, warp_row0 + 15, j0, j0 + kN - 1, p.is_causal, offset) : 0;
                    scale_and_mask<kGeneral, kMask>(sc, p, b, h, warp_row0, j0, N, scale_first, lane, mod, side, off);
                } else if (scale_first) {
                    scale_and_mask<kGeneral, kMask>(sc, p, b, h, warp_row0, j0, N, scale_first, lane, mod);
                }
                // The row max and P of scores s + off (general path), s (plain path: no offset code).
                auto max_of = [&](int hf, float m) { if constexpr (kGeneral) return row_max(sc, hf, m, off[hf]); else return row_max(sc, hf, m); };
                auto exp_of = [&](int hf, float m) { if constexpr (kGeneral) return softmax_exp(sc, m, hf, sl, off[hf]); else return softmax_exp(sc, m, hf, sl); };
                const bool ragged = j0 + kN > N || (p.is_causal && j0 + kN - 1 > wg_row0 + offset) ||
                                    (lower && j0 < wg_row0 + 63 + lower_offset);
                // A warp whose every row sees the tile's first half (left of its first row's diagonal,
                // below N: the diagonal tile of the warpgroup below it, a short last tile) compares
                // only the second half's keys.
                if (ragged && !lower) {
                    if (j0 + kN / 2 <= N && (!p.is_causal || warp_row0 + offset >= j0 + kN / 2 - 1))
                        hide_keys<kN / 8, kN / 16>(sc, warp_row0, j0, N, p.is_causal, offset, lane);
                    else
                        hide_keys(sc, warp_row0, j0, N, p.is_causal, offset, lane);
                }
                else if (kGeneral && ragged) hide_keys(sc, warp_row0, j0, N, p.is_causal, offset, lane, true, lower_offset);
                if constexpr (Tr::kLazyRescale) {
                    bool moved[2];
#pragma unroll
                    for (int hf = 0; hf < 2; ++hf) {
                        alpha[hf] = softmax_rescale_lazy(m_run[hf], max_of(hf, m_run[hf]), sl, moved[hf]);
                        const float sum = exp_of(hf, m_run[hf]);
                        l_run[hf] = l_run[hf] * alpha[hf] + sum;
                    }
                    return __any_sync(0xffffffffu, moved[0] || moved[1]);
                } else {
#pragma unroll
                    for (int hf = 0; hf < 2; ++hf) {
                        const float mx = max_of(hf, m_run[hf]);
                        alpha[hf] = softmax_rescale(m_run[hf], mx, sl);
                        const float sum = exp_of(hf, mx);
                        l_run[hf] = l_run[hf] * alpha[hf] + sum;
                    }
                    return true;
                }
            };

            // The pipeline inside a warpgroup: S_t = Q K_t^T runs on the tensor cores with O +=
            // P_{t-1} V_{t-1} queued behind it, and the softmax of S_t runs while that product computes.
            const int qs = k % Tr::kQStages;
            q_addr = smem_u32(sQ + qs * Tr::kQElems) + cw * 64 * 128;
            mbar_wait(bar_q + qs, (k / Tr::kQStages) & 1);
            // The first key tile: S alone (O is 0, nothing to rescale).
            auto first_tile = [&](auto& sc, auto& pa) {
                float alpha[2];
                mbar_wait(bar_k + slot, phase);
                take_turn();
                issue_qk(sc, slot);
                pass_turn();
                release_stored();   // the previous tile's O store, while this product runs
                wgmma_wait<0>();
                fence_regs(sc);
                release(bar_k_free + slot);
                if (Tr::kDirectO && t_end - t_begin == 1) release(bar_q_free + qs);
                softmax(sc, t_begin * kBlockN, alpha);
                pack_all(sc, pa);
            };
            // Key tile t: S_t into sc with P_{t-1} V_{t-1} from pa_prev queued behind it; then sc's
            // softmax, O rescaled, and P_t into pa (which may be pa_prev: it is rewritten only
            // once P_{t-1} V_{t-1} is done).
            auto next_tile = [&](int t, auto& sc, const auto& pa_prev, auto& pa) {
                float alpha[2];
                const int sp = slot;
                const uint32_t php = phase;
                advance();
                mbar_wait(bar_k + slot, phase);
                if constexpr (Tr::kPingPong) {   // both products in one turn, the data there first
                    mbar_wait(bar_v + sp, php);
                    take_turn();
                    issue_qk(sc, slot);
                    issue_pv(pa_prev, sp);
                    pass_turn();
                } else {
                    issue_qk(sc, slot);
                    mbar_wait(bar_v + sp, php);
                    issue_pv(pa_prev, sp);
                }
                wgmma_wait<1>();   // S_t is done; P_{t-1} V_{t-1} may still run
                fence_regs(sc);
                release(bar_k_free + slot);
                if (Tr::kDirectO && t == t_end - 1) release(bar_q_free + qs);
                const bool rescale = softmax(sc, t * kBlockN, alpha);
                wgmma_wait<0>();   // P_{t-1} V_{t-1} is done: O and pa may be rewritten
                fence_regs(o);
                release(bar_v_free + sp);
                if (rescale) {   // warp-uniform (always, without lazy rescaling)
#pragma unroll
                    for (int dt = 0; dt < Tr::kHeadDim / 8; ++dt) {
                        o[dt][0] *= alpha[0]; o[dt][1] *= alpha[0];
                        o[dt][2] *= alpha[1]; o[dt][3] *= alpha[1];
                    }
                }
                pack_all(sc, pa);
            };
            // The half tile (PrefillTraits::kHalfTile): this warpgroup's rows see keys up to `seen`,
            // which lies in the first half of the last key tile. Each path below completes its
            // products of S before the branches meet.
            int seen = N - 1;
            if (p.is_causal) seen = min(seen, wg_row0 + 63 + offset);
            const int j_last = (t_end - 1) * kBlockN;
            const bool half = Tr::kHalfTile && t_begin < t_end && seen >= j_last && seen < j_last + kBlockN / 2;
            const int t_whole = half ? t_end - 1 : t_end;   // key tiles computed whole: [t_begin, t_whole)
            if (t_begin < t_end) {
                float sc[kBlockN / 8][4];
                uint32_t pa[kBlockN / 16][4];
                float sh[Tr::kHalfTile ? kBlockN / 16 : 1][4];    // the half tile's S and P
                uint32_t ph[Tr::kHalfTile ? kBlockN / 32 : 1][4];
                if (t_begin < t_whole) {
                    first_tile(sc, pa);
                    for (int t = t_begin + 1; t < t_whole; ++t) next_tile(t, sc, pa, pa);
                    if constexpr (Tr::kHalfTile) {
                        if (half) next_tile(t_end - 1, sh, pa, ph);
                    }
                } else if constexpr (Tr::kHalfTile) {   // half: a single key tile, only its first half seen
                    first_tile(sh, ph);
                }
                // The last key tile's P V. Only that tile can hold rows past N (zero_v_tail): every
                // math warpgroup meets at its barrier here, at one instruction (bar.sync is aligned;
                // compute-sanitizer's synccheck reports a barrier reached from two places).
                mbar_wait(bar_v + slot, phase);
                zero_v_tail(slot, j_last, N);
                take_turn();
                if (half) issue_pv(ph, slot);   // never without kHalfTile (half is then a constant false)
                else issue_pv(pa, slot);
                pass_turn();
                wgmma_wait<0>();
                fence_regs(o);
                release(bar_v_free + slot);
                advance();
            } else if (Tr::kDirectO) {
                release(bar_q_free + qs);
            }

            // O = O / l (with a sink, its term joins l: common/softmax.cuh finish_row; a row that saw
            // no key: l = 0, O = 0, lse = the sink or -inf). Two Q slots: into this
            // warpgroup's rows of the slot with the 128-byte swizzle (chunk c of row r at c ^ (r % 8)),
            // four 8x8 blocks per stmatrix, then one bulk store per panel (only this warpgroup read
            // those rows, and its last wgmma has completed). One slot, or packed sequences (a bulk
            // store's box would run into the next sequence's rows): straight from the registers, 16
            // bytes per row per quad.
            const bool direct = Tr::kDirectO || (kGeneral && p.cu_seqlens_q != nullptr);
            const BlockInfo bi(p, b, h, kGeneral);
            float* gL = p.lse + bi.lse_row0(p);
            T* gO = bi.o<T>(p);
            release_stored();
            unsigned char* sO = reinterpret_cast<unsigned char*>(sQ + qs * Tr::kQElems) + cw * 64 * 128;
            const float sink = sink_log2(p, h);
            uint32_t ov[2][Tr::kHeadDim / 8];   // O / l in 16 bits: row half hf, columns 8 dt + 2 (lane % 4) + 0, 1
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                const RowEnd end = finish_row<true>(m_run[hf] * sl, quad_sum(l_run[hf]), sink);
                const float inv = end.o_scale;
                const int row = wg_row0 + warp * 16 + lane / 4 + hf * 8;
                if (lane % 4 == 0 && row < ti.len_q) gL[row] = end.lse;
#pragma unroll
                for (int dt = 0; dt < Tr::kHeadDim / 8; ++dt) ov[hf][dt] = pack2<T>(o[dt][2 * hf] * inv, o[dt][2 * hf + 1] * inv);
            }
            if (direct) {
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    const int row = wg_row0 + warp * 16 + lane / 4 + hf * 8;
#pragma unroll
                    for (int dt = 0; dt < Tr::kHeadDim / 8; ++dt)
                        if (row < ti.len_q && dt * 8 < p.head_dim)
                            *reinterpret_cast<uint32_t*>(gO + row * p.o_row_stride + dt * 8 + (lane % 4) * 2) = ov[hf][dt];
                }
            } else if constexpr (!Tr::kDirectO) {
                // stmatrix g: the blocks (columns 16 g .. 16 g + 7, rows 0-7 / 8-15 of the warp's
                // slice), then columns 16 g + 8 ... Lane l gives row l % 8 of block l / 8, whose chunk
                // 2 g % 8 + (l / 16) sits at that XOR the row: (2 g % 8) ^ x with x per lane.
                const int mi = lane / 8, mr = lane % 8;
                const uint32_t lane_row = smem_u32(sO) + (warp * 16 + (mi % 2) * 8 + mr) * 128;
                const uint32_t x = (mi / 2) ^ mr;
#pragma unroll
                for (int g = 0; g < Tr::kHeadDim / 16; ++g)
                    stmatrix_x4(lane_row + (g / 4) * kBlockM * 128 + (((2 * g) % 8) ^ x) * 16, ov[0][2 * g], ov[1][2 * g], ov[0][2 * g + 1],
                                ov[1][2 * g + 1]);
            }
            if constexpr (!Tr::kDirectO) {
                if (!direct) {
                    fence_proxy_async();
                    named_sync(2 + cw, 128);
                    if (tid == 0) {
#pragma unroll
                        for (int c = 0; c < Tr::kPanels; ++c) tma_store_4d(&maps.o, sO + c * kBlockM * 128, c * 64, wg_row0, h, b);
                        tma_store_commit();
                    }
                }
                pending_slot = qs;   // released at the next tile's release_stored (no store: at once)
            }
            ++k;
        }
        if (Tr::kPingPong && cw == 0) named_sync(Tr::kSchedBarrier, 256);   // the last hand-over: the barrier ends complete
        if (tid == 0) tma_store_wait_read();   // shared memory must outlive the last store's reads
    }
#endif
}

// ---- host side ----------------------------------------------------------------------------------

// A tensor map for rows of a (batch, heads, rows, head_dim) tensor with the given element strides:
// boxes of 64 columns x box_rows rows, 128-byte swizzle, zeros outside. False if the driver refuses.
bool make_tensor_map(CUtensorMap* map, const void* ptr, DType dtype, int head_dim, int rows, int heads, int batch,
                     int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows);

// The cost of query block m_block's work tile, in key tiles plus a fixed 0.5 a tile (the model of
// scripts/investigations/tile_balance.py): the key tiles it reads (as tile_info counts them, every
// batch row holding len_k keys), where a warpgroup whose rows hold no queries skips them
// (kSkipIdle; one of three active costs 0.4, two 0.75).
inline float tile_cost(const AttnParams& p, int m_block, int block_m, int block_n, int consumers, bool skip_idle) {
    const int row0 = m_block * block_m;
    const KeyRange keys = KeyRange::unmoved(p);
    const int t_end = (keys.end(p, row0, block_m) + block_n - 1) / block_n;
    const int t_begin = std::min(t_end, keys.begin(p, row0) / block_n);
    const int active = std::min(consumers, std::max(0, (p.len_q - row0 + 63) / 64));
    const float share = skip_idle && active < consumers ? (active == 1 ? 0.4f : 0.75f) : 1.f;
    return static_cast<float>(t_end - t_begin) * share + 0.5f;
}

// Fills tt with the plan of the last rounds of a persistent walk of num_tiles tiles over grid
// blocks (tile t costs cost[t % num_m]), or leaves it without one (prefill_sm90.cu).
void plan_tile_tail(TileTail& tt, const std::vector<float>& cost, int num_tiles, int grid, int rotate);

// Dispatches on dtype and path (plain, general without attn_mask, general); each per-head-dim file
// names only its configuration.
template <typename Tr, typename T, bool kGeneral, bool kMask>
cudaError_t launch_prefill_kernel(const AttnParams& p, const TmaMaps& maps, bool persistent, cudaStream_t stream) {
    constexpr auto kernel = prefill_sm90_kernel<Tr, T, kGeneral, kMask>;
    if (Tr::kSmemBytes > p.max_smem_per_block) return cudaErrorInvalidConfiguration;
    const cudaError_t err = opt_in_smem<kernel>(Tr::kSmemBytes);
    if (err != cudaSuccess) return err;
    // Persistent: one block per SM (each holds a whole SM's shared memory) loops over the tiles,
    // a head's query blocks side by side, so that the next tile's loads overlap this one's tail.
    // Otherwise one block per tile, in the same order, and the hardware hands out the tiles.
    const int64_t tiles = static_cast<int64_t>((p.len_q + Tr::kBlockM - 1) / Tr::kBlockM) * p.heads_q * p.batch;
    if (tiles >= (int64_t{1} << 31)) return cudaErrorInvalidValue;
    const int num_tiles = static_cast<int>(tiles);
    const int grid = persistent ? std::min(num_tiles, p.num_sms) : num_tiles;
    // The walk turns where the last query block is light (a warpgroup of it idle) and the query
    // blocks divide the grid (TileWalk).
    const int num_m = std::max(1, (p.len_q + Tr::kBlockM - 1) / Tr::kBlockM);
    const int tail = p.len_q % Tr::kBlockM;
    const bool light_last = Tr::kSkipIdle && tail != 0 && tail <= Tr::kBlockM - 64;
    const TileDivs dv{FastDiv(num_m), FastDiv(std::max(1, p.heads_q)), FastDiv(std::max(1, p.group)),
                      persistent && light_last && grid % num_m == 0 ? 1 : 0};
    // The last rounds' plan (TileTail), where the tiles' costs differ and are known on the host:
    // each batch row of the same lengths (no seqlens_k, packed sequences or mask ranges).
    TileTail tt{};
    tt.round0 = tt.rounds = (num_tiles + grid - 1) / grid;
    tt.base = num_tiles;
    if (Tr::kPlanTail && persistent && num_tiles > grid && p.seqlens_k == nullptr && p.cu_seqlens_q == nullptr && p.mask_ranges == nullptr &&
        (p.is_causal || p.has_window_left || light_last)) {
        std::vector<float> cost(num_m);
        for (int m_idx = 0; m_idx < num_m; ++m_idx)
            cost[m_idx] = tile_cost(p, num_m - 1 - m_idx, Tr::kBlockM, Tr::kBlockN, Tr::kConsumers, Tr::kSkipIdle);
        plan_tile_tail(tt, cost, num_tiles, grid, dv.rotate);
    }
    kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p, maps, dv, num_tiles, tt);
    return cudaGetLastError();
}

// The ping-pong schedule (PrefillTraits::kPingPong) runs in every configuration unless
// FLASHMIN_SM90_PINGPONG=0 is in the environment (read once, prefill_sm90.cu): the sequential
// schedule stays as a rung of the ladder and the baseline to measure against. H200, 2026-12-02
// (docs/perf-notes.md, Hopper prefill v7): ping-pong 1.02x / 1.08x / 1.04x faster (geometric mean
// over N = 128-16k, causal and not) at head dims 64 / 128 / 256.
bool pingpong_enabled();

template <typename Tr>
cudaError_t launch_prefill_sm90(const AttnParams& p, bool persistent, cudaStream_t stream);

// A configuration with or without ping-pong, as pingpong_enabled() says.
template <int kHeadDim, int kBlockN, int kStages, int kConsumers, int kQStages>
cudaError_t launch_prefill_sm90_config(const AttnParams& p, bool persistent, cudaStream_t stream) {
    if (pingpong_enabled())
        return launch_prefill_sm90<PrefillTraits<kHeadDim, kBlockN, kStages, kConsumers, kQStages, true>>(p, persistent, stream);
    return launch_prefill_sm90<PrefillTraits<kHeadDim, kBlockN, kStages, kConsumers, kQStages, false>>(p, persistent, stream);
}

template <typename Tr>
cudaError_t launch_prefill_sm90(const AttnParams& p, bool persistent, cudaStream_t stream) {
    TmaMaps maps;
    // Packed sequences: the maps span every row of the one batch row (TileInfo's coordinates).
    // kv_batch_idx: k and v have kv_batch rows of their own.
    const bool packed = p.cu_seqlens_q != nullptr;
    const int q_rows = packed ? p.total_q : p.len_q, k_rows = packed ? p.total_k : p.len_k, batch = packed ? 1 : p.batch;
    const int kv_batch = packed ? 1 : p.kv_batch;
    const bool ok =
        make_tensor_map(&maps.q, p.q, p.dtype, p.head_dim, q_rows, p.heads_q, batch, p.q_row_stride, p.q_head_stride,
                        p.q_batch_stride, Tr::kBlockM) &&
        make_tensor_map(&maps.k, p.k, p.dtype, p.head_dim, k_rows, p.heads_kv, kv_batch, p.k_row_stride, p.k_head_stride,
                        p.k_batch_stride, Tr::kBlockN) &&
        make_tensor_map(&maps.v, p.v, p.dtype, p.head_dim, k_rows, p.heads_kv, kv_batch, p.v_row_stride, p.v_head_stride,
                        p.v_batch_stride, Tr::kBlockN) &&
        make_tensor_map(&maps.o, p.o, p.dtype, p.head_dim, q_rows, p.heads_q, batch, p.o_row_stride, p.o_head_stride,
                        p.o_batch_stride, 64);
    if (!ok) return cudaErrorInvalidValue;
    // Calls with softcap, ALiBi or a window's left side but no attn_mask run a general
    // instantiation without the mask's code (the mask loop made the general kernel's main loop four
    // times the plain one's; without it plain calls forced onto the general path ran 0.91-0.95x of
    // plain at head dim 64 and 0.93-0.96x at 128, against 0.85-0.91x and 0.91-0.93x with it: H200,
    // 2026-12-02, docs/perf-notes.md "ALiBi in one FFMA, and what the general path costs"). Only
    // the ping-pong schedule has it (the sequential one is the ladder's rung, not a fast path).
    return DTYPE_SWITCH(p.dtype, T, [&] {
        if (!general_path(p)) return launch_prefill_kernel<Tr, T, false, false>(p, maps, persistent, stream);
        if constexpr (Tr::kPingPong) {
            if (p.mask_kind == MaskKind::kNone) return launch_prefill_kernel<Tr, T, true, false>(p, maps, persistent, stream);
        }
        return launch_prefill_kernel<Tr, T, true, true>(p, maps, persistent, stream);
    });
}

}  // namespace sm90
}  // namespace flashmin
