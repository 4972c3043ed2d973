// prefill_launch.cu: picks the sm80 prefill configuration for a call (by head dim).
//
// Prefill configurations (kBlockM x kBlockN, 4 warps), measured on the H100 with scripts/tune.py,
// every variant beside SDPA's flash backend in the same process (docs/perf-notes.md, v4):
//   hdim 32, 64: 128 x 64, two 16-row slices per warp, Q in registers. 64 x 64 with one slice
//                per warp was 15-20% slower at hdim 64 (each K fragment feeds one MMA, not two).
//                Two K/V slots (tile t+1 fetched while t is computed, one barrier per tile): +10-17%
//                at hdim 64 over one slot, from 0.83-0.98x flash to 1.00-1.19x. 128 x 128 tiles
//                (Q from shared memory, 16-byte spills) were 0-8% slower than 128 x 64.
//                Lazy rescaling: +10-15% at hdim 32, but 5-7% slower at hdim 64, so off there.
//   hdim 96, 128: 128 x 64, two slices per warp, Q re-read from shared memory (registers go to
//                O). 8 warps x one slice (213 registers, one block per SM) was 20-25% slower:
//                with a single block per SM every barrier stalls the whole SM. Lazy rescaling
//                on: +1-4%. An L2::128B prefetch hint on the loads: no measurable change (off).
//   Swizzled K/V tiles (hdim 64, 128, session 3): unpadded rows with 16-byte chunks XOR-permuted
//                (Traits::kSwizzleKV; the decode kernel's layout). +2-7% at hdim 64 and +1-9% at
//                hdim 128 with one K/V slot. At hdim 128 the swizzled kernel also compiles with
//                two K/V slots and no spills (padded, two slots spilled 80 bytes and lost 1-4%),
//                and that is the configuration: 1.06-1.26x flash in fp16 and bf16, against
//                0.93-1.16x for the padded one-slot kernel, N = 128..16k (run S3-3). hdim 96
//                keeps padded rows (12 chunks per row: the 8-chunk XOR would leave the row).
//   hdim 256:    64 x 32, one slice per warp, Q re-read from shared memory, two slots (no
//                spills); lazy rescaling 0-10% slower, so off.
// Head dims that are multiples of 8 run in the next compiled size up, zero-padded (80 -> 96).
// The binding has already checked dtype (fp16/bf16), 16-byte row alignment and head_dim <= 256.
#include "flashmin.h"
#include "common/switch.h"
#include "prefill_sm80/prefill_config.h"

namespace flashmin {

cudaError_t run_prefill_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim > 256) return cudaErrorInvalidValue;
    return HEADDIM_SWITCH(p.head_dim, kHeadDim, [&] { return sm80::run_prefill_hdim<kHeadDim>(p, stream); });
}

}  // namespace flashmin
