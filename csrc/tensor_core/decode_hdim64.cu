// Head dim 64 instantiation of the decode kernel (decode_kernel.cuh): 32-key tiles, four warps,
// 2 ring slots per warp, L2::256B prefetch hint; two blocks (8 warps) per SM. Measured reasons: see tc_fwd.cu.
#include "tensor_core/decode_kernel.cuh"

namespace flashmin {

using DecodeHdim64 = tc::DecodeTraits<64, 32, 2, 4>;
void plan_decode_hdim64(AttnParams& p) { tc::plan_decode<DecodeHdim64>(p); }
cudaError_t run_decode_fwd_hdim64(const AttnParams& p, cudaStream_t stream) { return tc::launch_decode<DecodeHdim64>(p, stream); }

}  // namespace flashmin
