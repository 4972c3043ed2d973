// Head dim 256 instantiation of the Hopper prefill kernel (configuration and reason: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim256(const AttnParams& p, cudaStream_t stream) {
    // One block per tile: persistent (one Q slot fits) was 0.60-0.64x cuDNN at 512 keys against 0.86x.
    return sm90::launch_prefill_sm90_config<256, 80, 2, 2, 1>(p, /*persistent=*/false, stream);
}

}  // namespace flashmin
