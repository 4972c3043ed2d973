// prefill_launch.cu: the sm80 prefill kernel for a call, by head dim.
//
// A head dim that is a multiple of 8 runs in the next compiled size up, zero-padded (80 -> 96);
// the configurations and their measured reasons are in prefill_config.h. The binding has already
// checked dtype (fp16/bf16), 16-byte row alignment and head_dim <= 256.
#include "flashmin.h"
#include "common/switch.h"
#include "prefill_sm80/prefill_config.h"

namespace flashmin {

cudaError_t run_prefill_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim > 256) return cudaErrorInvalidValue;
    return HEADDIM_SWITCH(p.head_dim, kHeadDim, [&] { return sm80::run_prefill_hdim<kHeadDim>(p, stream); });
}

}  // namespace flashmin
