// Head dim 64 instantiation of the Hopper prefill kernel (configuration and reason: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim64(const AttnParams& p, cudaStream_t stream) {
    // Persistent up to 2k keys: 0.74 -> 0.92x cuDNN at 512 keys; one block per tile from 8k keys:
    // 1.00-1.02x there against 0.87-0.93x persistent (2026-12-01, H200).
    return sm90::launch_prefill_sm90_config<64, 128, 3, 3, 2>(p, /*persistent=*/p.len_k <= 2048, stream);
}

}  // namespace flashmin
