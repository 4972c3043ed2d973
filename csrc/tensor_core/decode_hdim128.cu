// Head dim 128 decode instantiations: the tensor-core kernel with 64-row tiles (one 16-row slice per
// warp, Q in registers), with and without its split-KV mode. See tc_fwd.cu.
#include "tensor_core/tc_fwd_kernel.cuh"

namespace flashmin {

cudaError_t run_decode_fwd_hdim128(const AttnParams& p, cudaStream_t stream) {
    using Tr = tc::Traits<128, 64, 64, 4, true>;
    if (p.dtype == DType::kFloat16)
        return p.num_splits > 1 ? tc::launch_tc<Tr, __half, true>(p, stream) : tc::launch_tc<Tr, __half, false>(p, stream);
    return p.num_splits > 1 ? tc::launch_tc<Tr, __nv_bfloat16, true>(p, stream) : tc::launch_tc<Tr, __nv_bfloat16, false>(p, stream);
}

}  // namespace flashmin
