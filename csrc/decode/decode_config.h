// decode_config.h: the head dims the decode kernel is compiled for, the configuration of each
// with its measured reason, and their entry points.
//
// The kernel (decode_kernel.cuh): four warps split a block's keys, each streaming its own tiles
// through a private ring of cp.async slots into XOR-swizzled shared memory (the loads' L2 hints:
// decode_kernel.cuh). Measurements: H100, 2026-11-24, commit b7508ef, scripts/tune.py over five runs,
// against 16-key tiles with 4 (hdim 64) or 3 (hdim 128) slots per warp. Slower than the
// configurations below, at both head dims: 3 slots of 32 keys, 64-key tiles, 8 warps, 2 or 3
// warps, 16-key tiles with 2 slots. How a call is split and which L2 policy its loads carry:
// decode_plan.cu. One instantiation file per head dim (decode_hdim*.cu) keeps builds parallel;
// decode_launch.cu picks the one that serves a call (DECODE_HEADDIM_SWITCH, common/switch.h).
// On the H200 (2026-12-02, 37a5409 + the experiment patch, with the loads as they are now; ratios
// to SDPA's default in one process, scripts/investigations/decode_variants.py) no other shape won
// every cell at head dim 128: 16-key tiles with 3 slots (two blocks per SM) 0.998x at B=8, H=32,
// 16k keys against 0.985x but 0.970x against 0.993x at 64k; 3 slots of 32 keys 0.988-1.062x;
// two-warp blocks lost 5-7% with grouped queries. At head dim 64, 3 slots of 32 keys measured
// +1-4.6% (1.204-1.352x -> 1.243-1.364x) but need 100 KB per block, one block per SM on sm_80
// (164 KB) and sm_86/sm_89 (100 KB): not taken.
// Plain C++: no device code.
#pragma once

#include "flashmin.h"

namespace flashmin {
namespace decode {

template <int kHeadDim>
struct DecodeConfig;

template <>
struct DecodeConfig<64> {
    static constexpr int kHeadDim = 64;
    static constexpr int kWarpN = 32;   // +0.5-1.5% at 16k and 64k keys (B=8, H=12: 2700-2732 -> 2740-2758 GB/s at 16k)
    static constexpr int kStages = 2;   // one tile in flight while one is computed (3 slots were slower)
    static constexpr int kNWarps = 4;   // two blocks (8 warps) per SM
};

template <>
struct DecodeConfig<128> {
    static constexpr int kHeadDim = 128;
    static constexpr int kWarpN = 32;   // 0.995-0.997x -> 0.996-1.001x SDPA at 64k keys; ncu 2.78 -> 2.76 ms, level with cuDNN
    static constexpr int kStages = 2;   // one tile in flight while one is computed (3 slots were slower)
    static constexpr int kNWarps = 4;   // one block per SM (135 KB of shared memory)
};

// The decode kernel (and the merge of its splits) compiled for kHeadDim (64, 128), for a call
// whose head dim is a multiple of 8 up to kHeadDim, zero-padded.
template <int kHeadDim>
cudaError_t run_decode_hdim(const AttnParams& p, cudaStream_t stream);

template <> cudaError_t run_decode_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_decode_hdim<128>(const AttnParams& p, cudaStream_t stream);

}  // namespace decode
}  // namespace flashmin
