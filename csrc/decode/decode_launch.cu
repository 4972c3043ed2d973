// decode_launch.cu: picks the decode configuration for a call (by head dim).
//
// Decode (1-16 queries over long caches, head dims 64 and 128): decode_kernel.cuh. Four warps
// splitting the keys, each with a private ring of cp.async slots, XOR-swizzled K/V tiles, the
// L2::256B prefetch hint. Session 4: 32-key tiles with two slots per warp (one tile in flight
// while one is computed), at both head dims. Against 16-key tiles with 4 (hdim 64) or 3 (hdim
// 128) slots, in five runs of scripts/tune.py: hdim 64 +0.5-1.5% at 16k and 64k keys (B=8,
// H=12: 2700-2732 -> 2740-2758 GB/s at 16k); hdim 128 (one block per SM now, 135 KB of shared
// memory) 0.995-0.997x -> 0.996-1.001x SDPA at 64k keys, and ncu at 64k: 2.78 -> 2.76 ms, level
// with cuDNN (2.76). Slower: 3 slots of 32 keys, 64-key tiles, 8 warps, 2 or 3 warps, 16-key
// tiles with 2 slots. Small caches are read with an evict-first L2 policy (prepare_decode in
// flashmin_api.cpp says when). The key range is split when the grid would leave SMs idle, to
// about one block per SM, and for long caches in 8 parts read in sweep order (plan_decode); the
// splits' merge is a second kernel, launched as a programmatic dependent of the first on sm90.
#include "flashmin.h"
#include "common/switch.h"
#include "decode/decode_config.h"

namespace flashmin {

void plan_decode_hdim64(AttnParams& p);
void plan_decode_hdim128(AttnParams& p);

int decode_padded_head_dim(int head_dim) { return head_dim <= 64 ? 64 : head_dim <= 128 ? 128 : 0; }

void plan_decode(AttnParams& p) {
    if (p.head_dim <= 64) plan_decode_hdim64(p);
    else plan_decode_hdim128(p);
}

cudaError_t run_decode_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim > 128) return cudaErrorInvalidValue;
    return DECODE_HEADDIM_SWITCH(p.head_dim, kHeadDim, [&] { return decode::run_decode_hdim<kHeadDim>(p, stream); });
}

}  // namespace flashmin
