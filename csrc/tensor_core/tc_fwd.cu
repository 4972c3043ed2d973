// tc_fwd.cu: picks the tensor-core configuration for a call.
//
// Prefill tile shapes (kBlockM x kBlockN, 4 warps), measured on the H100 (docs/perf-notes.md):
//   hdim 32, 64: 128 x 64, two 16-row slices per warp, Q in registers. 64 x 64 with one slice
//                per warp was 15-20% slower at hdim 64 (each K fragment feeds one MMA, not two).
//   hdim 96, 128: 128 x 64, two slices per warp, Q re-read from shared memory (registers go to
//                O). 8 warps x one slice (213 registers, one block per SM) was 20-25% slower:
//                with a single block per SM every barrier stalls the whole SM.
//   hdim 256:    64 x 32, one slice per warp, Q re-read from shared memory.
// Head dims that are multiples of 8 run in the next compiled size up, zero-padded (80 -> 96).
// The binding has already checked dtype (fp16/bf16), 16-byte row alignment and head_dim <= 256.
//
// Decode (short queries over long caches, head dims 64 and 128): 32 x 128 tiles on two warps, so
// many blocks fit per SM and each keeps a 128-key K and V tile in flight; the key range is split
// so the grid is one full wave (the occupancy API says how many blocks fit), and the partials are
// merged by combine_splits_kernel. Measured: 64 x 64 tiles on four warps split without regard
// to occupancy reached 0.77-0.81x SDPA at B=8, H=12, D=64 (576 blocks, 396 slots: two waves).
#include "flashmin.h"

namespace flashmin {

cudaError_t run_tc_fwd_hdim32(const AttnParams& p, cudaStream_t stream);
cudaError_t run_tc_fwd_hdim64(const AttnParams& p, cudaStream_t stream);
cudaError_t run_tc_fwd_hdim96(const AttnParams& p, cudaStream_t stream);
cudaError_t run_tc_fwd_hdim128(const AttnParams& p, cudaStream_t stream);
cudaError_t run_tc_fwd_hdim256(const AttnParams& p, cudaStream_t stream);
cudaError_t run_decode_fwd_hdim64(const AttnParams& p, cudaStream_t stream);
cudaError_t run_decode_fwd_hdim128(const AttnParams& p, cudaStream_t stream);
int plan_decode_splits_hdim64(const AttnParams& p);
int plan_decode_splits_hdim128(const AttnParams& p);

cudaError_t run_tc_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim <= 32) return run_tc_fwd_hdim32(p, stream);
    if (p.head_dim <= 64) return run_tc_fwd_hdim64(p, stream);
    if (p.head_dim <= 96) return run_tc_fwd_hdim96(p, stream);
    if (p.head_dim <= 128) return run_tc_fwd_hdim128(p, stream);
    if (p.head_dim <= 256) return run_tc_fwd_hdim256(p, stream);
    return cudaErrorInvalidValue;
}

int decode_padded_head_dim(int head_dim) { return head_dim <= 64 ? 64 : head_dim <= 128 ? 128 : 0; }

int plan_decode_splits(const AttnParams& p) {
    return p.head_dim <= 64 ? plan_decode_splits_hdim64(p) : plan_decode_splits_hdim128(p);
}

cudaError_t run_decode_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim <= 64) return run_decode_fwd_hdim64(p, stream);
    if (p.head_dim <= 128) return run_decode_fwd_hdim128(p, stream);
    return cudaErrorInvalidValue;
}

}  // namespace flashmin
