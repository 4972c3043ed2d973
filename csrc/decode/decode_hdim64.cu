// Head dim 64 instantiation of the decode kernel (decode_kernel.cuh): 32-key tiles, four warps,
// 2 ring slots per warp, L2::256B prefetch hint; two blocks (8 warps) per SM. Measured reasons: see decode_launch.cu.
#include "decode/decode_kernel.cuh"

namespace flashmin {

using DecodeHdim64 = decode::DecodeTraits<64, 32, 2, 4>;
void plan_decode_hdim64(AttnParams& p) { decode::plan_decode<DecodeHdim64>(p); }
cudaError_t run_decode_fwd_hdim64(const AttnParams& p, cudaStream_t stream) { return decode::launch_decode<DecodeHdim64>(p, stream); }

}  // namespace flashmin
