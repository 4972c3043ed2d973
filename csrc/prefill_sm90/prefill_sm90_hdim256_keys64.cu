// Head dim 256 with 64-key tiles, for key ranges that 80-key tiles pad by more than 10%
// (prefill_sm90_hdim256.cu).
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim256_keys64(const AttnParams& p, cudaStream_t stream) {
    // Two K/V slots, one Q slot: 192 KB of shared memory; one block per tile as the 80-key one.
    return sm90::launch_prefill_sm90_config<256, 64, 2, 2, 1>(p, /*persistent=*/false, stream);
}

}  // namespace flashmin
