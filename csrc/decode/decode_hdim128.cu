// Head dim 128 instantiation of the decode kernel (decode_kernel.cuh): 32-key tiles, four warps,
// 2 ring slots per warp, L2::256B prefetch hint; one block (4 warps, 135 KB of shared memory) per SM. Measured reasons: see decode_launch.cu.
#include "decode/decode_kernel.cuh"

namespace flashmin {

using DecodeHdim128 = decode::DecodeTraits<128, 32, 2, 4>;
void plan_decode_hdim128(AttnParams& p) { decode::plan_decode<DecodeHdim128>(p); }
cudaError_t run_decode_fwd_hdim128(const AttnParams& p, cudaStream_t stream) { return decode::launch_decode<DecodeHdim128>(p, stream); }

}  // namespace flashmin
