// prefill_sm90_kernel.cuh: the Hopper prefill kernel (sm_90a: TMA, mbarriers, wgmma, setmaxnreg).
// Its parts: the configuration (prefill_sm90_traits.h), the work tiles and the persistent walk
// (prefill_sm90_scheduler.cuh), the launch (prefill_sm90_launch_template.cuh).
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

#include <cstdint>
#include <type_traits>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/ptx.cuh"
#include "common/ptx_sm90.cuh"
#include "common/softmax.cuh"
#include "common/wgmma.cuh"
#include "prefill_sm90/prefill_sm90_scheduler.cuh"
#include "prefill_sm90/prefill_sm90_traits.h"

namespace flashmin {
namespace sm90 {

// The four tensor maps of a call (made on the host: prefill_sm90_launch_template.cuh).
struct TmaMaps {
    CUtensorMap q, k, v, o;
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

}  // namespace sm90
}  // namespace flashmin
