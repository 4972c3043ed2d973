// decode_plan.cu: the decode kernel's host-side plan (host code only: nvcc or any C++ compiler).
//
// Measurements below: H100 (132 SMs, 50 MiB L2), 2026-11-24, scripts/tune.py with every variant
// beside SDPA's default in the same process unless said otherwise; docs/perf-notes.md has the runs
// under the commits named.
#include "decode/decode_plan.h"

#include <algorithm>

#include "decode/decode_config.h"
#include "decode/decode_traits.h"

namespace flashmin {
namespace {

// (1) GQA packing. Valid when the mask, if any, is the same for every head and row, and the causal
// limit (if any) hides nothing from the single query. A window's left side, ALiBi and attention
// sinks pack: the rows keep their query position (0) and their query head's slope and sink
// (AttnParams::rows_are_heads).
bool packs_gqa(const AttnParams& p) {
    const bool mask_shared = p.mask_kind == MaskKind::kNone || (p.mask_head_stride == 0 && p.mask_row_stride == 0);
    const bool sees_all = !p.is_causal || p.causal_offset >= p.len_k - 1;
    return p.len_q == 1 && p.group > 1 && mask_shared && sees_all;
}

// q (B, Hq, 1, D) viewed as (B, Hkv, group, D): a kv head's query heads become its rows (and o likewise).
AttnParams packed_gqa(AttnParams p) {
    const int group = p.group;
    p.q_row_stride = p.q_head_stride;
    p.q_head_stride *= group;
    p.o_row_stride = p.o_head_stride;
    p.o_head_stride *= group;
    p.heads_q = p.heads_kv;
    p.len_q = group;
    p.group = 1;
    p.is_causal = false;
    p.rows_are_heads = group;
    return p;
}

// How to split the key range (num_splits, split_sweep), for the kernel's tile shape Tr.
//
// (a) A (batch, head, row-block) grid smaller than the GPU. Each split adds partials to write and
// a merge kernel to wait for, about 3 us on the H200 whatever the length, so a grid that already
// keeps enough bytes in flight stays unsplit below kSplitTiles tiles (16k keys): blocks weighted by
// head dim (a head dim 128 block has twice the bytes of a 64 one in flight) at least 2/3 of the
// SMs. Measured at B=8 (H200, 2026-12-02, graph replay, splits switched per call beside SDPA's
// default in one process; docs/results/2026-12-02-h200-c88936e/decode-split*.txt): 64 blocks
// (Hq=32, Hkv=8, D=128) at 1k / 4k keys ran 17.1 / 43.2 us unsplit against 20.3 / 46.5 us in 2
// splits, and 96 blocks (H=12, D=64) 14.6 / 34.3 / 111.2 us at 1k / 4k / 16k unsplit against
// 17.4 / 38.6 / 115.4 us in 2; but 48 blocks (B=4, H=12, D=64) at 4k 27.6 us unsplit against
// 24.1 us in 2. Otherwise (and from 16k keys) the grid takes about one block per SM as before,
// never so many splits that a warp is left with fewer than two tiles (below that the fixed costs
// - Q, the merge, the combine - outweigh the streaming): at B=1, H=32 (32 blocks) 1.28x faster
// than unsplit at 4k keys, 1.76x at 32k. A paged cache of pages under one tile (16 keys: two half
// tiles per tile, decode_kernel.cuh) streamed slower per block, so there long ranges took at least
// 2 splits: at 16k / 64k keys 114.3 / 407.3 us against 122.6 / 444.4 us unsplit (96 blocks),
// 140.9 / 504.0 us against 151.4 / 576.2 us (64 blocks); the contiguous cache's 96 blocks
// unsplit 111.2 / 400.2 us, in 2 splits 115.4 / 408.0 us. Since a whole tile's copies run from
// one pointer a page (load_whole_rows), head dim 64 no longer does: 96 blocks (B=8, H=12) over
// 16-key pages, unsplit in the pair configuration, 34.7 / 108.8 / 386.0 us at 4k / 16k / 64k keys
// against 38.2 / 113.7 / 405.9 us in 2 splits (the contiguous cache 34.0 / 106.4 / 373.5; H200,
// 2026-12-03, graph replay, docs/results/2026-12-03-h200-tlb/run3b-paged-variants-d64.txt). Head
// dim 128 keeps the 2 splits (not measured again). (On the H100, where the earlier rule
// was measured, unsplit 96 blocks also beat 2-4 splits at 1k-16k keys, commit 5c6ea90.)
//
// (b) A grid that fills the GPU, over a long cache (kLongTiles tiles, 32k keys): 8 splits.
// Unsplit, the blocks running at one time each stream their own head, 16 MB apart at 64k keys
// in a (B, H, L, D) cache; the read rate then stays at about 3.10 TB/s, where cuDNN's decode
// also sits, while a reader whose blocks take neighbouring chunks reaches 3.15
// (scripts/investigations/read_ceiling.py). With 8 splits in sweep order (c) the 132 blocks that
// run at once read about 16 heads, each through one window. Measured at B=8, H=32, D=128 (commit
// ea4d094): 32k / 64k / 128k keys 1.006-1.008 / 1.009-1.010 / 1.010x SDPA against 0.999-1.000 /
// 0.998-1.000 / 0.995x unsplit; 12 or 16 splits the same, 4 splits about half the gain, 2 none.
// At 16k keys 8 splits measured 0.999-1.001x against 1.000-1.002x unsplit, at 4k 0.985x: no gain
// there, so the limit. In the (B, L, H, D) layout of flash_attn_with_kvcache, 8 splits in the
// plain order (which puts a batch row's heads, i.e. neighbouring memory, side by side): +0.8% /
// +1.2% at 32k / 64k keys. Head dim 64 (two blocks per SM), B=8, H=24: +1.8% / +2.3%.
//
// (c) Sweep order: when each head's keys are contiguous (a (B, H, L, D)-like cache) and the
// splits are long (kSweepTiles tiles, 16k keys), the splits of one head are launched side by
// side and split s reads tile groups s, s + splits, ... instead of one contiguous range. With
// B=8, Hkv=8 (grouped queries, 64 blocks, 2 splits by rule a), 16k / 64k keys: 1.003 /
// 1.003-1.004x against 0.997 / 0.999-1.001x for contiguous ranges. At B=8, H=32, 64k keys: 33
// contiguous ranges of one head side by side 1.001x, 33 interleaved splits in the plain order
// 0.995x, the two together 1.008x. In the (B, L, H, D) layout the plain order already reads
// neighbouring memory (8 splits in sweep order there: 1.009x against 1.021x).
// The decode grid's blocks before splitting: one per (batch row, query head, 16 query rows), in
// every configuration.
long grid_blocks(const AttnParams& p) {
    constexpr int kRows = decode::DecodeTraits<decode::DecodeConfig<64>>::kBlockM;
    static_assert(kRows == decode::DecodeTraits<decode::DecodeConfig<128>>::kBlockM &&
                      kRows == decode::DecodeTraits<decode::DecodeConfigPair<64>>::kBlockM &&
                      kRows == decode::DecodeTraits<decode::DecodeConfigPair<128>>::kBlockM,
                  "every configuration's block takes the same rows");
    return static_cast<long>(p.batch) * p.heads_q * ((p.len_q + kRows - 1) / kRows);
}

template <typename Tr>
void plan_splits(const AttnParams& p, DecodePlan& plan) {
    constexpr long kLongTiles = 32768 / Tr::kWarpN, kSweepTiles = 16384 / Tr::kWarpN, kLongSplits = 8;
    constexpr long kSplitTiles = 16384 / Tr::kWarpN;   // rule (a): a grid with enough blocks stays unsplit below
    const long blocks = grid_blocks(p);
    // The keys a row block reads: all of them, or with a window's left side about its width.
    long keys = p.len_k;
    if (p.has_window_left && p.is_causal)
        keys = std::min<long>(keys, std::max(0L, static_cast<long>(p.causal_offset) - (p.diag_offset - p.window_left) + p.len_q));
    else if (p.has_window_left)
        keys = std::min<long>(keys, std::max(0L, static_cast<long>(p.len_k) - (p.diag_offset - p.window_left)));
    const long tiles = (keys + Tr::kWarpN - 1) / Tr::kWarpN;
    long splits = 1;
    if (blocks < p.num_sms) {
        const long by_sms = p.num_sms / std::max(1L, blocks);
        const long by_work = tiles / (2 * Tr::kNWarps);
        // Pages under one tile at head dim 128 stream slower per block: at least 2 splits (above).
        const bool slow_pages = p.block_table != nullptr && (1L << p.page_shift) < Tr::kWarpN && Tr::kHeadDim > 64;
        // Head dim 128 blocks keep twice the bytes in flight of head dim 64 ones.
        const long streams = blocks * (Tr::kHeadDim / 64);
        if (streams * 3 >= 2 * p.num_sms && tiles < kSplitTiles) splits = 1;
        else splits = std::max(1L, std::min({std::max(by_sms, slow_pages ? 2L : 1L), by_work, 128L}));
    } else if (tiles >= kLongTiles) {
        splits = kLongSplits;
    }
    const bool head_major = p.heads_kv == 1 || (p.k_head_stride > p.k_row_stride && p.v_head_stride > p.v_row_stride);
    const long heads = static_cast<long>(p.batch) * p.heads_q;
    plan.split_sweep = splits > 1 && head_major && tiles >= kSweepTiles && heads <= 65535;   // grid.z = batch x heads
    if (!plan.split_sweep && p.batch * splits > 65535) splits = 1;                           // grid.z = batch x splits
    plan.num_splits = static_cast<int>(splits);
}

// (e) The pair configurations (DecodeConfigPair, decode_config.h: about 100 KB a block), where
// two of their blocks fit an SM (sm_90's 228 KB; each block also takes the 1 KB the system
// reserves). Measured on the H200 (2026-12-03; the figures are beside the configurations):
// at head dim 64 in every call but the split ones over 16-key pages (with the whole-tile copies
// too: 120.3 against 113.7 us in 2 splits at 16k keys, B=8, H=12); at head dim 128 where the
// grid holds one to two blocks per SM, unsplit at every length (all its blocks then run at once).
template <typename Cfg>
bool pair_fits(const AttnParams& p) {
    constexpr long kBytes = decode::DecodeTraits<Cfg>::kSmemBytes;
    return kBytes <= p.max_smem_per_block && 2 * (kBytes + 1024) <= p.smem_per_sm;
}

void plan_pair(const AttnParams& q, DecodePlan& plan) {
    if (q.head_dim <= 64) {   // not for split calls over pages shorter than DecodeConfig<64>'s tiles
        const bool small_pages = q.block_table != nullptr && (1L << q.page_shift) < decode::DecodeConfig<64>::kWarpN;
        plan.pair_config = pair_fits<decode::DecodeConfigPair<64>>(q) && !(small_pages && plan.num_splits > 1);
        return;
    }
    const long blocks = grid_blocks(q);
    if (pair_fits<decode::DecodeConfigPair<128>>(q) && blocks >= q.num_sms && blocks <= 2L * q.num_sms) {
        plan.pair_config = true;
        plan.num_splits = 1;
        plan.split_sweep = false;
    }
}

}  // namespace

DecodePlan plan_decode(const AttnParams& p, int64_t l2_bytes) {
    DecodePlan plan;
    plan.pack_gqa = packs_gqa(p);
    const AttnParams q = plan.pack_gqa ? packed_gqa(p) : p;   // the shape the kernel sees
    if (q.head_dim <= 64) plan_splits<decode::DecodeTraits<decode::DecodeConfig<64>>>(q, plan);
    else plan_splits<decode::DecodeTraits<decode::DecodeConfig<128>>>(q, plan);
    plan_pair(q, plan);
    // (d) The L2 policy of the K/V loads: evict-first when the cache is small against the L2, so
    // that the stream recycles its own lines instead of evicting (and writing back, when dirty)
    // what other kernels left there; the default policy for large caches, where evict-first
    // measured 2-3% slower. Measured at B=8 (commit b7508ef; L2 flushed by a 256 MB memset before
    // each call, so it is dirty): 25-201 MB caches +2-18%, 268 MB +0.3%, 302 MB -0.4%, 403-537 MB
    // -2-3.5%; the limit is 5x the L2 (250 MiB on the H100). ncu, H=12, 1k keys: DRAM writes during
    // the kernel 8.0 -> 1.6 MB, 17.1 -> 15.0 us. On the H200 (60 MiB L2: 300 MiB; 37a5409 + the
    // experiment patch, docs/results/2026-12-02-h200-37a5409/) the rule still holds: plain loads
    // instead of evict-first on the 1k-key caches lost 2-9% (B=8, H=32: 1.044 -> 0.979x SDPA's
    // default; H=12, D=64 4k keys: 1.352 -> 1.220x), evict-first on the large ones lost 0.5-5%.
    // The large caches' loads carry no policy at all (decode_kernel.cuh: a policy operand, even
    // evict-normal, cost 9-13% of the read rate there).
    const int64_t kv_bytes = 2LL * q.batch * q.heads_kv * q.len_k * q.head_dim * 2;
    plan.kv_evict_first = kv_bytes <= 5 * l2_bytes;
    if (plan.num_splits > 1) {
        const int64_t rows = static_cast<int64_t>(q.batch) * q.heads_q * q.len_q;
        const int padded_head_dim = q.head_dim <= 64 ? 64 : 128;   // the compiled head dim: the o_accum row length
        plan.o_accum_floats = plan.num_splits * rows * padded_head_dim;
        plan.lse_accum_floats = plan.num_splits * rows;
    }
    return plan;
}

AttnParams apply_decode_plan(const AttnParams& p, const DecodePlan& plan, float* accum) {
    AttnParams q = plan.pack_gqa ? packed_gqa(p) : p;
    q.num_splits = plan.num_splits;
    q.split_sweep = plan.split_sweep;
    q.kv_evict_first = plan.kv_evict_first;
    q.decode_pair = plan.pair_config;
    if (plan.num_splits > 1) {
        q.o_accum = accum;
        q.lse_accum = accum + plan.o_accum_floats;
    }
    return q;
}

}  // namespace flashmin
