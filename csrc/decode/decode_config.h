// decode_config.h: the head dims the decode kernel is compiled for, the configuration of each
// with its measured reason, and their entry points.
//
// The kernel (decode_kernel.cuh): four warps split a block's keys, each streaming its own tiles
// through a private ring of cp.async slots into XOR-swizzled shared memory (the loads' L2 hints:
// decode_kernel.cuh). Measurements: H100, 2026-11-24, commit b7508ef, scripts/tune.py over five runs,
// against 16-key tiles with 4 (hdim 64) or 3 (hdim 128) slots per warp. Slower than the
// configurations below, at both head dims: 3 slots of 32 keys, 64-key tiles, 8 warps, 2 or 3
// warps, 16-key tiles with 2 slots. How a call is split and which L2 policy its loads carry:
// decode_plan.cu. One instantiation file per head dim and configuration (decode_hdim*.cu) keeps
// builds parallel; decode_launch.cu picks the one that serves a call (DECODE_HEADDIM_SWITCH,
// common/switch.h, and the plan's choice of configuration).
// On the H200 (2026-12-02, 37a5409 + the experiment patch, with the loads as they are now; ratios
// to SDPA's default in one process, scripts/investigations/decode_variants.py) no other shape won
// every cell at head dim 128: 16-key tiles with 3 slots (two blocks per SM) 0.998x at B=8, H=32,
// 16k keys against 0.985x but 0.970x against 0.993x at 64k (8 splits; unsplit it is the pair
// configuration below, for such grids only); 3 slots of 32 keys 0.988-1.062x; two-warp blocks
// lost 5-7% with grouped queries. At head dim 64, 3 slots of 32 keys measured +1-4.6%
// (1.204-1.352x -> 1.243-1.364x) but need 100 KB per block, one block per SM on sm_80 (164 KB)
// and sm_86/sm_89 (100 KB): the pair configuration, where two fit an SM.
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

// The pair configurations: about 100 KB of shared memory a block, so that two blocks share an SM
// of 228 KB (sm_90; an sm_80 SM has 164 KB, sm_86 / sm_89 100 KB: there the plan keeps
// DecodeConfig). The plan (decode_plan.cu, rule e) says when a call runs one. Measured on the
// H200 (2026-12-03, fp16, each variant switched per call beside SDPA's default in one process;
// docs/results/2026-12-03-h200-variants/):
// - head dim 64: 32-key tiles in 3 slots, 4 warps (98 KB), two tiles in flight a warp where
//   DecodeConfig<64> has one. B=8, H=12, graph replay: 1k / 4k / 16k keys 15.2 / 34.2 / 105.0 us
//   against 15.3 / 35.0 / 109.5 (on 37a5409: +3-4.6% over 1k-64k); over 16-key pages, unsplit,
//   15.1 / 35.0 us against 15.6 / 37.5 at 1k / 4k (0.93x -> 1.00x the contiguous cache's speed),
//   but with the two splits of a long range 121.5 against 111.8 us at 16k (so not there).
// - head dim 128: 16-key tiles in 3 slots, 4 warps (100 KB). Where the grid has one to two
//   blocks per SM (B=8, H=32: 256 blocks) every block is resident at once, as with cuDNN's
//   decode (two blocks per SM), instead of a second wave of DecodeConfig<128>'s one block per SM
//   (or 8 splits in 15.5 waves at 64k keys): 1k / 4k / 16k / 64k keys 1.087-1.101x / 1.003-1.009x
//   / 0.998-1.000x / 0.995x SDPA's default, against 1.054-1.067x / 0.996-0.997x / 0.987-0.990x /
//   0.992-0.993x; over 16-key pages (whole pages per tile) 0.996 / 0.997 / 0.992x the contiguous
//   cache's speed at 1k / 4k / 16k against 0.957 / 0.989 / 0.985x. With more blocks it lost (B=64:
//   0.984x against 0.992x at 4k), with fewer too (32 query heads on 8 kv heads, 64 blocks: 1.093x
//   against 1.126x at 4k).
template <int kHeadDim>
struct DecodeConfigPair;

template <>
struct DecodeConfigPair<64> {
    static constexpr int kHeadDim = 64, kWarpN = 32, kStages = 3, kNWarps = 4;
};

template <>
struct DecodeConfigPair<128> {
    static constexpr int kHeadDim = 128, kWarpN = 16, kStages = 3, kNWarps = 4;
};

// The decode kernel (and the merge of its splits) compiled for kHeadDim (64, 128), for a call
// whose head dim is a multiple of 8 up to kHeadDim, zero-padded: DecodeConfig's, or with
// p.decode_pair DecodeConfigPair's (run_decode_pair_hdim, decode_hdim*_pair.cu).
template <int kHeadDim>
cudaError_t run_decode_hdim(const AttnParams& p, cudaStream_t stream);
template <int kHeadDim>
cudaError_t run_decode_pair_hdim(const AttnParams& p, cudaStream_t stream);

template <> cudaError_t run_decode_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_decode_hdim<128>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_decode_pair_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_decode_pair_hdim<128>(const AttnParams& p, cudaStream_t stream);

}  // namespace decode
}  // namespace flashmin
