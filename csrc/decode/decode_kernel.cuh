// decode_kernel.cuh: short queries (1-16 rows) over long KV caches, split-KV, fp16/bf16.
//
// Decode is memory bound: the math per key is one 16-row MMA slice, so what counts is how many
// bytes are in flight. The layout is chosen for that:
// - one block per (16 query rows, head, batch, split); its warps take the split's key tiles in
//   turn (warp w: tiles w, w + kNWarps, ...), each with its own m, l and O, so every warp does
//   useful work even for a single query row;
// - a split is a contiguous key range, or, in sweep order (AttnParams::split_sweep), every
//   num_splits-th group of kNWarps tiles, with the splits of one head launched side by side:
//   the blocks running at one time then read neighbouring memory (decode_plan.cu);
// - every warp streams its own tiles through a private ring of kStages (K, V) slots in shared
//   memory with cp.async: kStages - 1 tiles are in flight while one is computed, and a warp waits
//   only for its own copies (cp.async.wait_group + __syncwarp, no block barrier in the loop);
// - the K/V loads of a large cache are plain cp.async.cg, with no L2 prefetch-size hint and no
//   cache policy: on the H200 the L2::256B hint and an evict-normal policy cost 20% of the read
//   rate (B=8, H=32, D=128, 16k keys: 3579 -> 4453 GB/s without them, 0.79 -> 0.99x cuDNN; the
//   hint's extra L2 lookups kept the L2 at 92% of its throughput with DRAM at 76%, ncu); a cache
//   small against the L2 (the host decides: AttnParams::kv_evict_first) carries the evict-first
//   policy, so the stream does not push out other data;
// - after the loop the warps' partial results are merged through shared memory; with one split
//   the block writes the output, otherwise fp32 partial O and lse, merged by combine_splits_kernel.
// Tr: DecodeTraits<DecodeConfig<kHeadDim>> (decode_traits.h, decode_config.h). The PTX wrappers, the
// tile loader, the warp-level products and the slice helpers (masking, online softmax) are shared
// with the prefill kernels (csrc/common/).
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/ptx.cuh"
#include "common/softmax.cuh"
#include "common/tiles.cuh"
#include "common/warp_gemm.cuh"
#include "decode/decode_traits.h"

namespace flashmin {
namespace decode {

// kGeneral: attn_mask, softcap, ALiBi, a window's left side (the general path of
// common/softmax.cuh). A window's right side and attention sinks need no flag (with splits, the
// sinks join in combine_splits_kernel). kPaged: K/V tiles found through block_table.
template <typename Tr, typename T, bool kGeneral, bool kSplitKV, bool kPaged>
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

    const BlockInfo blk(p, b, h, kGeneral);
    const KeyRange keys = blk.keys(p);
    const int offset = keys.causal_offset;
    int N = keys.len_k;   // keys from N on are hidden, and never read
    // Packed GQA rows (rows_are_heads) all sit at query position 0.
    const int pos0 = p.rows_are_heads ? 0 : row0, row_step = p.rows_are_heads ? 0 : 1;
    // Q: one copy group for the whole block, the first one committed (the general path issues it
    // before it reads the mask, so that the two are in flight together).
    auto load_q = [&]() {
        const T* gQ = blk.q<T>(p);
        for (int idx = threadIdx.x; idx < Tr::kBlockM * (Tr::kHeadDim / 8); idx += Tr::kThreads) {
            const int r = idx / (Tr::kHeadDim / 8), c = idx % (Tr::kHeadDim / 8);
            const bool valid = row0 + r < p.len_q && c * 8 < p.head_dim;
            cp_async_16(sQ + r * Tr::kQStride + c * 8, valid ? gQ + (row0 + r) * p.q_row_stride + c * 8 : gQ, valid);
        }
        cp_async_commit();
    };
    if constexpr (kGeneral) load_q();

    // The key tiles of this row block, [t_lo, t_end): those above the causal diagonal and those
    // wholly before every row's window are never read; the splits divide what is left.
    int t_end = (keys.end(p, pos0, p.rows_are_heads ? 1 : Tr::kBlockM) + Tr::kWarpN - 1) / Tr::kWarpN;
    int t_lo = min(t_end, keys.begin(p, pos0) / Tr::kWarpN);
    // range_from: where a bool attn_mask is one row for the whole block and lets through every key
    // of [first, last], its first key (-1 otherwise). The mask is then not read again: keys before
    // it are hidden in the tile that holds them, keys past the last as keys past N are.
    int range_from = -1;
    // scan_late: one mask row for the block and per-batch key counts (seqlens_k: a static cache's
    // filled keys, from transformers' FilledKeys). Keys past N are never read, so the first tiles'
    // copies go out before the row is scanned, and the scan, in flight beside them, only narrows
    // what is hidden (range_from, N); it moves no tile. Keys below seqlens_k are the caller's keys,
    // read even where the mask hides them (as a tile that a mask hides in part is).
    bool scan_late = false;
    if constexpr (kGeneral) {
        // A bool attn_mask narrows the range to the keys some row of the block may see (a static
        // cache's empty slots, left padding): read once from the mask, before any K/V, while Q is
        // in flight. The scratch ints sit in warp 0's first ring slot, which no copy reaches before.
        if (p.mask_kind == MaskKind::kBool && p.mask_col_stride == 1) {
            const bool one_row = p.rows_are_heads || p.mask_row_stride == 0 || p.len_q - row0 == 1;
            scan_late = one_row && p.seqlens_k != nullptr;
        }
        if (p.mask_kind == MaskKind::kBool && p.mask_col_stride == 1 && !scan_late) {
            const bool one_row = p.rows_are_heads || p.mask_row_stride == 0 || p.len_q - row0 == 1;
            const int rows = one_row ? 1 : min(Tr::kBlockM, p.len_q - row0);
            const int3 seen = mask_key_range<Tr::kThreads, 4>(p, b, h, pos0, rows, N, reinterpret_cast<int*>(sQ + Tr::kSmemQ));
            t_lo = max(t_lo, seen.x / Tr::kWarpN);
            t_end = min(t_end, (seen.y + Tr::kWarpN) / Tr::kWarpN);   // seen.y = -1 (nothing seen): no tiles
            t_lo = min(t_lo, t_end);
            if (one_row && seen.y >= 0 && seen.z == seen.y - seen.x + 1) {
                N = seen.y + 1;
                range_from = seen.x;
            }
        }
    }
    int t_begin = t_lo, t_step = Tr::kNWarps;
    if (sweep) {                       // tile groups split, split + num_splits, ...
        t_begin = t_lo + split * Tr::kNWarps;
        t_step = p.num_splits * Tr::kNWarps;
    } else if constexpr (kSplitKV) {   // one contiguous range
        const int per_split = (t_end - t_lo + p.num_splits - 1) / p.num_splits;
        t_begin = min(t_end, t_lo + split * per_split);
        t_end = min(t_end, t_begin + per_split);
    }
    // This warp's tiles: t_begin + warp + i * t_step, i < n_mine.
    const int first = t_begin + warp;
    const int n_mine = first < t_end ? (t_end - first + t_step - 1) / t_step : 0;
    auto tile_j0 = [&](int i) { return (first + i * t_step) * Tr::kWarpN; };   // the first key of this warp's tile i

    const T* gK = blk.k<T>(p);
    const T* gV = blk.v<T>(p);

    // The K/V loads: plain cp.async for a large cache, with the evict-first policy for a small one
    // (AttnParams::kv_evict_first; decode_plan.cu). kEvict is a compile-time tag, so each kind of
    // load is straight code behind one uniform branch.
    const uint64_t policy = l2_policy(true);
    // A paged cache: the tile's rows from their pages. Pages of 32 keys or more hold the whole
    // 32-key tile (tiles start at multiples of 32, pages are powers of two): one page, and its base
    // shifted back by the keys of the pages before it, so that the usual row index j addresses row
    // j % page_size. Pages of 16: two half tiles, a page each; a half wholly past the row's keys
    // has no page (its entry of block_table may not exist) and is zero-filled.
    // The page numbers come from block_table 32 tiles at a time, ahead of their use: lane l holds
    // those of this warp's tile 32 c + l (pg_now, the halves' pages in .x and .y), and the next 32
    // tiles' (pg_next) are read when the warp moves to a new group, a whole group before they are
    // needed. A tile's copies then wait on a shuffle, not on a dependent global load. With a
    // lookup in front of each half tile's copies (the second one issued only after the first
    // half's asm volatile copies), 16-key pages at head dim 64 ran at 0.70-0.73x the contiguous
    // cache's speed on the H200, and at 0.85-0.90x with the read-ahead (2026-12-02,
    // docs/perf-notes.md, "Paged decode v2").
    const int32_t* pages = kPaged ? p.block_table + b * p.block_table_stride : nullptr;
    const int page_mask = kPaged ? (1 << p.page_shift) - 1 : 0;
    const bool small_pages = kPaged && page_mask + 1 < Tr::kWarpN;
    auto read_pages = [&](int group) {   // lane's entry of tile group * 32 + lane, (0, 0) past the keys
        int2 e = make_int2(0, 0);
        const int i = group * 32 + lane;
        const int j = tile_j0(i);
        if (kPaged && i < n_mine && j < N) {
            e.x = __ldg(pages + (j >> p.page_shift));
            if (small_pages && j + Tr::kWarpN / 2 < N) e.y = __ldg(pages + ((j + Tr::kWarpN / 2) >> p.page_shift));
        }
        return e;
    };
    int2 pg_now = make_int2(0, 0), pg_next = make_int2(0, 0);
    if constexpr (kPaged) {
        pg_now = read_pages(0);
        pg_next = read_pages(1);
    }
    // Tile i's page numbers (i grows by one from call to call; warp-uniform, every lane calls).
    auto tile_pages = [&](int i) {
        if (i % 32 == 0 && i > 0) {
            pg_now = pg_next;
            pg_next = read_pages(i / 32 + 1);
        }
        return make_int2(__shfl_sync(0xffffffffu, pg_now.x, i % 32), __shfl_sync(0xffffffffu, pg_now.y, i % 32));
    };
    // A tile whose rows all lie below N, at the compiled head dim (every tile of a long cache but
    // the last): each lane's copies run from one pointer (into the cache, or into the tile's page),
    // with no bounds and no zero fill (load_whole_rows). This lane's rows are lane / kChunks +
    // k * kRowStep of the tile.
    constexpr int kChunks = Tr::kHeadDim / 8, kRowStep = 32 / kChunks;
    const bool whole_cols = p.head_dim == Tr::kHeadDim;
    const T* gK_lane = gK + (lane / kChunks) * p.k_row_stride + (lane % kChunks) * 8;
    const T* gV_lane = gV + (lane / kChunks) * p.v_row_stride + (lane % kChunks) * 8;
    const int64_t k_step = kRowStep * p.k_row_stride, v_step = kRowStep * p.v_row_stride;
    auto load_kv = [&](auto evict, T* slot, int i) {
        constexpr bool kEvict = decltype(evict)::value;
        const int j0 = tile_j0(i);
        int2 pg = make_int2(0, 0);
        if constexpr (kPaged) pg = tile_pages(i);
        if (whole_cols && j0 + Tr::kWarpN <= N) {   // every tile of the row but its last
            if (!small_pages) {   // rows from j0: of the cache, or (j0 % page_size) of the tile's one page
                const T* k_src = gK_lane;
                const T* v_src = gV_lane;
                int64_t row = j0;
                if constexpr (kPaged) {
                    k_src += pg.x * p.k_page_stride;
                    v_src += pg.x * p.v_page_stride;
                    row = j0 & page_mask;
                }
                load_whole_rows<Tr, Tr::kWarpN, 32, kEvict>(slot, k_src + row * p.k_row_stride, k_step, policy);
                load_whole_rows<Tr, Tr::kWarpN, 32, kEvict>(slot + Tr::kTile, v_src + row * p.v_row_stride, v_step, policy);
            } else {              // 16-key pages (small_pages: paged only): each half tile is one whole page
                if constexpr (kEvict) slot = hide_uniform(slot);   // see below
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int64_t page = half ? pg.y : pg.x;
                    T* dst = slot + half * (Tr::kWarpN / 2) * Tr::kHeadDim;
                    load_whole_rows<Tr, Tr::kWarpN / 2, 32, kEvict>(dst, gK_lane + page * p.k_page_stride, k_step, policy);
                    load_whole_rows<Tr, Tr::kWarpN / 2, 32, kEvict>(dst + Tr::kTile, gV_lane + page * p.v_page_stride, v_step, policy);
                }
            }
            return;
        }
        // A row's last tile, or a padded head dim: bounded rows, zero-filled past N.
        if constexpr (!kPaged) {
            load_tile<Tr, Tr::kWarpN, true, 32, kEvict>(slot, gK, p.k_row_stride, j0, N, p.head_dim, policy);
            load_tile<Tr, Tr::kWarpN, true, 32, kEvict>(slot + Tr::kTile, gV, p.v_row_stride, j0, N, p.head_dim, policy);
        } else {
            auto base = [&](const T* g, int64_t page_stride, int64_t row_stride, int page, int j) {
                return g + static_cast<int64_t>(page) * page_stride - static_cast<int64_t>(j & ~page_mask) * row_stride;
            };
            if (!small_pages) {
                load_tile<Tr, Tr::kWarpN, true, 32, kEvict>(slot, base(gK, p.k_page_stride, p.k_row_stride, pg.x, j0),
                                                            p.k_row_stride, j0, N, p.head_dim, policy, gK);
                load_tile<Tr, Tr::kWarpN, true, 32, kEvict>(slot + Tr::kTile, base(gV, p.v_page_stride, p.v_row_stride, pg.x, j0),
                                                            p.v_row_stride, j0, N, p.head_dim, policy, gV);
                return;
            }
            // The half tiles' copies with the policy take their slot address through hide_uniform
            // (common/ptx.cuh): at head dim 128, without it, ptxas 13.0 emitted copies that read
            // uniform registers nothing writes, and they stopped on an illegal instruction on the
            // H200 (docs/perf-notes.md, "Paged decode: a ptxas fault"). Head dim 64's 16-key pages
            // at 1k / 4k keys (B=8, H=12, caches of 25 / 100 MB) ran 15.2 / 37.2 us with the policy
            // against 16.2 / 41.4 us plain (the contiguous cache 14.6 / 34.4 us); at head dim 128
            // the policy took them from 0.916x to 0.970-0.972x the contiguous cache's speed at 1k
            // keys (B=8, 32/32 and 32/8 heads) and from 0.890x to 0.946x at 4k (32/8).
            if constexpr (kEvict) slot = hide_uniform(slot);
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int j = j0 + half * (Tr::kWarpN / 2);
                const int page = half ? pg.y : pg.x;
                T* dst = slot + half * (Tr::kWarpN / 2) * Tr::kHeadDim;   // swizzled rows of kHeadDim elements
                const bool inside = j < N;   // else zero rows, as load_tile writes past len, from no page
                load_tile<Tr, Tr::kWarpN / 2, true, 32, kEvict>(dst,
                                                                inside ? base(gK, p.k_page_stride, p.k_row_stride, page, j) : gK,
                                                                p.k_row_stride, j, N, p.head_dim, policy, gK);
                load_tile<Tr, Tr::kWarpN / 2, true, 32, kEvict>(dst + Tr::kTile,
                                                                inside ? base(gV, p.v_page_stride, p.v_row_stride, page, j) : gV,
                                                                p.v_row_stride, j, N, p.head_dim, policy, gV);
            }
        }
    };
    auto load = [&](int i) {   // tile i of this warp into slot i % kStages
        T* slot = ring + (i % Tr::kStages) * 2 * Tr::kTile;
        if (p.kv_evict_first) load_kv(std::true_type{}, slot, i);
        else load_kv(std::false_type{}, slot, i);
    };

    // Q, then the first kStages - 1 tiles of every warp.
    if constexpr (!kGeneral) load_q();
#pragma unroll
    for (int i = 0; i < Tr::kStages - 1; ++i) {
        if (i < n_mine) load(i);
        cp_async_commit();
    }
    if constexpr (kGeneral) {
        if (scan_late) {   // the row's range, the copies above in flight; scratch: warp 0's last slot,
            static_assert(Tr::kStages >= 2, "a ring slot no copy fills before the loop");   // filled in the loop
            int* scratch = reinterpret_cast<int*>(sQ + Tr::kSmemQ + (Tr::kStages - 1) * 2 * Tr::kTile);
            const int3 seen = mask_key_range<Tr::kThreads, 4>(p, b, h, pos0, 1, N, scratch);
            if (seen.y < 0) {
                N = 0;                            // the row sees no key: every score hidden, zeros out
            } else if (seen.z == seen.y - seen.x + 1) {
                N = seen.y + 1;                   // the later tiles' rows past it: zero-filled, not read
                range_from = seen.x;
            }
        }
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

    const bool scale_first = scale_scores_first(p, kGeneral);
    const float sl = score_log2_factor(p, kGeneral);
    ScoreMod mod(p, b, h, keys.diag_offset);
    if (p.rows_are_heads) mod.rows_for_heads(p, b, h, p.rows_are_heads, row0, lane);
    const bool lower = p.has_window_left;   // only ever set with kGeneral (general_path)
    const int lower_offset = keys.lower_offset;
    // A tile needs masking past the first row's last key (the causal limit rises with the row)
    // or before the last row's first key (so does the window's lower limit).
    const int pos_last = pos0 + row_step * (Tr::kBlockM - 1);   // the last row's query position

    for (int i = 0; i < n_mine; ++i) {
        // Refill the slot tile i-1 used (every lane left it at the __syncwarp below), then wait
        // for tile i: at most kStages - 1 newer groups may still be in flight.
        if (i + Tr::kStages - 1 < n_mine) load(i + Tr::kStages - 1);
        cp_async_commit();
        cp_async_wait<Tr::kStages - 1>();
        __syncwarp();

        const int j0 = tile_j0(i);
        const uint32_t slot_off = (i % Tr::kStages) * kSlotBytes;
        float s[1][Tr::kNT][4];
        warp_qk<T, Tr::kKS, true, 0, kRowBytes, true>(s, qf, 0, opaque(k_lane + slot_off), k_xor);

        if (kGeneral || scale_first)
            scale_and_mask<kGeneral>(s[0], p, b, h, pos0, j0, N, scale_first, lane, mod, 0, nullptr, range_from < 0);
        if (kGeneral && j0 < range_from)   // the keys before the mask's range: below a row-independent limit
            hide_keys(s[0], 0, j0, N, false, 0, lane, true, range_from, 0);
        if (kGeneral && lower) {   // its own copy, in the general path only
            if (j0 + Tr::kWarpN > N || (p.is_causal && j0 + Tr::kWarpN - 1 > pos0 + offset) || j0 < pos_last + lower_offset)
                hide_keys(s[0], pos0, j0, N, p.is_causal, offset, lane, true, lower_offset, row_step);
        } else if (j0 + Tr::kWarpN > N || (p.is_causal && j0 + Tr::kWarpN - 1 > row0 + offset)) {
            hide_keys(s[0], row0, j0, N, p.is_causal, offset, lane);
        }
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) softmax_step(s[0], o[0], m_run[hf], l_run[hf], row_max(s[0], hf, m_run[hf]), hf, sl, true);

        warp_pv<T, kRowBytes, true>(o, s, opaque(v_lane + slot_off), v_xor);
        __syncwarp();   // every lane is done with this slot before it is refilled
    }
    cp_async_wait<0>();
    __syncthreads();   // every warp is done with its ring: the merge area may overwrite them

    // Merge the warps: row r's result is sum_w 2^((m_w - M) sl) O_w / sum_w 2^((m_w - M) sl) l_w
    // (unsplit, with a sink's term joining the denominator: common/softmax.cuh finish_row).
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
        // A row that saw no key: zeros. The sink of the row's query head joins here when unsplit
        // (split: in the merge of the splits). Rows past len_q are never written.
        const int head = p.rows_are_heads ? h * p.rows_are_heads + min(row0 + r, p.len_q - 1) : h;
        const RowEnd end = finish_row(M * sl, total, kSplitKV ? -INFINITY : sink_log2(p, head));
#pragma unroll
        for (int w = 0; w < Tr::kNWarps; ++w) mW[w * Tr::kBlockM + r] = wts[w] * end.o_scale;
        rowLse[r] = end.lse;
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

}  // namespace decode
}  // namespace flashmin
