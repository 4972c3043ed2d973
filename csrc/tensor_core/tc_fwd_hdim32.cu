// Head dim 32 instantiations of the tensor-core kernel (one file per head dim keeps builds parallel).
// Variant 0 is the default; variant 1 is the alternative kept for tuning (FLASHMIN_TC_VARIANT=1).
// The choice and its measured reason are recorded in tc_fwd.cu.
#include "tensor_core/tc_fwd_kernel.cuh"

namespace flashmin {

cudaError_t run_tc_fwd_hdim32(const AttnParams& p, cudaStream_t stream, int variant) {
    using V0 = tc::Traits<32,128,64,4,true>;
    using V1 = tc::Traits<32,64,64,4,true>;
    if (p.dtype == DType::kFloat16)
        return variant == 1 ? tc::launch_tc<V1, __half>(p, stream) : tc::launch_tc<V0, __half>(p, stream);
    return variant == 1 ? tc::launch_tc<V1, __nv_bfloat16>(p, stream) : tc::launch_tc<V0, __nv_bfloat16>(p, stream);
}

}  // namespace flashmin
