// decode_launch.cu: the decode kernel for a call, by head dim (64 or 128; a smaller multiple of 8
// runs zero-padded). The configurations and their measured reasons: decode_config.h; the plan the
// params carry (the configuration, splits, sweep order, L2 policy, GQA packing): decode_plan.cu.
#include "flashmin.h"
#include "common/switch.h"
#include "decode/decode_config.h"

namespace flashmin {

cudaError_t run_decode_fwd(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim > 128) return cudaErrorInvalidValue;
    return DECODE_HEADDIM_SWITCH(p.head_dim, kHeadDim, [&] {
        return p.decode_pair ? decode::run_decode_pair_hdim<kHeadDim>(p, stream) : decode::run_decode_hdim<kHeadDim>(p, stream);
    });
}

}  // namespace flashmin
