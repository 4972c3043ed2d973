// prefill_sm90_scheduler.cuh: the Hopper prefill kernel's work tiles and the persistent walk over
// them (device side: TileWalk, tile_info), and the host's side of the walk (tile_cost, and
// plan_tile_tail in prefill_sm90_plan.cu).
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/fast_div.cuh"

namespace flashmin {
namespace sm90 {

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
// prefill_sm90_plan.cu): where tiles differ in cost (causality), the snake leaves some blocks a heavy
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
// blocks (tile t costs cost[t % num_m]), or leaves it without one (prefill_sm90_plan.cu).
void plan_tile_tail(TileTail& tt, const std::vector<float>& cost, int num_tiles, int grid, int rotate);

}  // namespace sm90
}  // namespace flashmin
