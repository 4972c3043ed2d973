// prefill_sm90_launch_template.cuh: the host side of the Hopper prefill kernel: the tensor maps,
// the grid (persistent or one block per tile), the walk's divisors and last rounds' plan, and the
// dispatch on dtype, path and schedule. Each prefill_sm90_hdim*.cu instantiates its configurations.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "flashmin.h"
#include "common/fast_div.cuh"
#include "common/launch.cuh"
#include "common/softmax.cuh"
#include "common/switch.h"
#include "prefill_sm90/prefill_sm90_kernel.cuh"
#include "prefill_sm90/prefill_sm90_scheduler.cuh"
#include "prefill_sm90/prefill_sm90_traits.h"

namespace flashmin {
namespace sm90 {

// A tensor map for rows of a (batch, heads, rows, head_dim) tensor with the given element strides:
// boxes of 64 columns x box_rows rows, 128-byte swizzle, zeros outside. False if the driver refuses.
bool make_tensor_map(CUtensorMap* map, const void* ptr, DType dtype, int head_dim, int rows, int heads, int batch,
                     int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows);

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
