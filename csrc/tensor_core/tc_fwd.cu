// tc_fwd.cu: picks the tensor-core configuration for a call.
//
// Tile shapes per head dim (kBlockM x kBlockN, warps; each warp owns kBlockM / (16 * warps) 16-row
// MMA slices) live in tc_fwd_hdim*.cu. Head dims that are multiples of 8 run in the next compiled
// size up, zero-padded (80 -> 96). The binding has already checked dtype (fp16/bf16), alignment
// (16-byte rows) and head_dim <= 256.
#include <cstdlib>

#include "flashmin.h"

namespace flashmin {

cudaError_t run_tc_fwd_hdim32(const AttnParams& p, cudaStream_t stream, int variant);
cudaError_t run_tc_fwd_hdim64(const AttnParams& p, cudaStream_t stream, int variant);
cudaError_t run_tc_fwd_hdim96(const AttnParams& p, cudaStream_t stream, int variant);
cudaError_t run_tc_fwd_hdim128(const AttnParams& p, cudaStream_t stream, int variant);
cudaError_t run_tc_fwd_hdim256(const AttnParams& p, cudaStream_t stream, int variant);

namespace {
// FLASHMIN_TC_VARIANT=1 selects each head dim's alternative tile shape: a tuning knob for the
// benchmark, read once.
int tc_variant() {
    static const int v = [] {
        const char* s = std::getenv("FLASHMIN_TC_VARIANT");
        return s ? std::atoi(s) : 0;
    }();
    return v;
}
}  // namespace

cudaError_t run_tc_fwd(const AttnParams& p, cudaStream_t stream) {
    const int v = tc_variant();
    if (p.head_dim <= 32) return run_tc_fwd_hdim32(p, stream, v);
    if (p.head_dim <= 64) return run_tc_fwd_hdim64(p, stream, v);
    if (p.head_dim <= 96) return run_tc_fwd_hdim96(p, stream, v);
    if (p.head_dim <= 128) return run_tc_fwd_hdim128(p, stream, v);
    if (p.head_dim <= 256) return run_tc_fwd_hdim256(p, stream, v);
    return cudaErrorInvalidValue;
}

}  // namespace flashmin
