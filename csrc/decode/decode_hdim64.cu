// Head dim 64 instantiation of the decode kernel (decode_kernel.cuh): 32-key tiles, four warps,
// 2 ring slots per warp, L2::256B prefetch hint; two blocks (8 warps) per SM. Measured reasons: see decode_launch.cu.
#include "decode/decode_config.h"
#include "decode/decode_launch_template.cuh"

namespace flashmin {

void plan_decode_hdim64(AttnParams& p) { decode::plan_decode<decode::DecodeTraits<64, 32, 2, 4>>(p); }

namespace decode {

template <>
cudaError_t run_decode_hdim<64>(const AttnParams& p, cudaStream_t stream) {
    return launch_decode<DecodeTraits<64, 32, 2, 4>>(p, stream);
}

}  // namespace decode
}  // namespace flashmin
