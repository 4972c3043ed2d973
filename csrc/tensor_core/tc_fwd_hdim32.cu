// Head dim 32 instantiation of the tensor-core kernel (one file per head dim keeps builds parallel).
// Tile shape, buffering and rescaling, and their measured reasons: see tc_fwd.cu.
#include "tensor_core/tc_fwd_kernel.cuh"

namespace flashmin {

cudaError_t run_tc_fwd_hdim32(const AttnParams& p, cudaStream_t stream) {
    using Tr = tc::Traits<32, 128, 64, 4, true, 2, true>;
    return tc::launch_tc<Tr>(p, stream);
}

}  // namespace flashmin
