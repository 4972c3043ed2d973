// prefill_config.h: the head dims the sm80 prefill kernel is compiled for, the configuration of
// each with its measured reason, and their entry points.
//
// Measurements: H100, 2026-11-24, scripts/tune.py, every variant beside SDPA's flash backend in
// the same process ("x flash": the ratio of their rates), commits 34c4e0e (slots, lazy rescaling)
// and 6b4d00d (swizzled K/V tiles); docs/perf-notes.md has the runs. Each configuration names the
// choices; PrefillTraits (prefill_traits.h) derives the rest. One instantiation file per head dim
// (prefill_hdim*.cu) keeps builds parallel; prefill_launch.cu picks the one that serves a call
// (HEADDIM_SWITCH, common/switch.h). Plain C++: no device code.
#pragma once

#include "flashmin.h"

namespace flashmin {
namespace sm80 {

template <int kHeadDim>
struct PrefillConfig;

template <>
struct PrefillConfig<32> {
    static constexpr int kHeadDim = 32;
    static constexpr int kBlockM = 128;          // two 16-row slices per warp, as at hdim 64 (each K fragment feeds two MMAs)
    static constexpr int kBlockN = 64;           // 128 x 128 tiles (Q from shared memory, 16-byte spills) were 0-8% slower
    static constexpr int kNWarps = 4;
    static constexpr bool kQInRegs = true;       // Q's fragments fit beside O's accumulators
    static constexpr int kStages = 2;            // two K/V slots, as at hdim 64 (+10-17% over one there)
    static constexpr bool kLazyRescale = true;   // +10-15%
    static constexpr bool kSwizzleKV = false;    // the XOR swizzle permutes 8 chunks; a 32-wide row has 4
};

template <>
struct PrefillConfig<64> {
    static constexpr int kHeadDim = 64;
    static constexpr int kBlockM = 128;          // one slice per warp (64 rows) was 15-20% slower: a K fragment then feeds one MMA
    static constexpr int kBlockN = 64;           // 128 x 128 tiles (Q from shared memory, 16-byte spills) were 0-8% slower
    static constexpr int kNWarps = 4;
    static constexpr bool kQInRegs = true;       // Q's fragments fit beside O's accumulators
    static constexpr int kStages = 2;            // +10-17% over one K/V slot: 0.83-0.98x flash -> 1.00-1.19x
    static constexpr bool kLazyRescale = false;  // 5-7% slower here (+10-15% at hdim 32)
    static constexpr bool kSwizzleKV = true;     // +2-7% over padded rows (measured with one K/V slot)
};

template <>
struct PrefillConfig<96> {
    static constexpr int kHeadDim = 96;
    static constexpr int kBlockM = 128;          // two slices per warp: 8 warps x one slice (213 registers) was 20-25% slower
    static constexpr int kBlockN = 64;
    static constexpr int kNWarps = 4;            // 8 warps fit one block per SM, where every barrier stalls the whole SM
    static constexpr bool kQInRegs = false;      // the registers go to O; Q is re-read from shared memory at each k-step
    static constexpr int kStages = 1;            // padded rows: two slots spilled at hdim 128 (80 bytes, 1-4% slower)
    static constexpr bool kLazyRescale = true;   // +1-4%
    static constexpr bool kSwizzleKV = false;    // 12 chunks per row: the 8-chunk XOR would leave the row
};

template <>
struct PrefillConfig<128> {
    static constexpr int kHeadDim = 128;
    static constexpr int kBlockM = 128;          // two slices per warp: 8 warps x one slice (213 registers) was 20-25% slower
    static constexpr int kBlockN = 64;
    static constexpr int kNWarps = 4;            // 8 warps fit one block per SM, where every barrier stalls the whole SM
    static constexpr bool kQInRegs = false;      // the registers go to O; Q is re-read from shared memory at each k-step
    static constexpr int kStages = 2;            // swizzled, no spills: 1.06-1.26x flash (N = 128..16k) vs 0.93-1.16x padded, one slot
    static constexpr bool kLazyRescale = true;   // +1-4%
    static constexpr bool kSwizzleKV = true;     // +1-9% (one slot); lets two slots fit (padded: 80-byte spills, 1-4% slower)
};

template <>
struct PrefillConfig<256> {
    static constexpr int kHeadDim = 256;
    static constexpr int kBlockM = 64;           // one slice per warp: O for two would be 256 fp32 registers a thread
    static constexpr int kBlockN = 32;
    static constexpr int kNWarps = 4;
    static constexpr bool kQInRegs = false;      // Q is re-read from shared memory at each k-step
    static constexpr int kStages = 2;            // two K/V slots without spills
    static constexpr bool kLazyRescale = false;  // 0-10% slower
    static constexpr bool kSwizzleKV = true;     // unpadded, swizzled rows (not measured apart at this head dim)
};

// The prefill kernel compiled for kHeadDim (32, 64, 96, 128, 256), for a call whose head dim is
// a multiple of 8 up to kHeadDim, zero-padded.
template <int kHeadDim>
cudaError_t run_prefill_hdim(const AttnParams& p, cudaStream_t stream);

template <> cudaError_t run_prefill_hdim<32>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<96>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<128>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<256>(const AttnParams& p, cudaStream_t stream);

}  // namespace sm80
}  // namespace flashmin
