// Head dim 128 instantiation of the Hopper prefill kernel (configuration and reason: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim128(const AttnParams& p, cudaStream_t stream) {
    // Causal: 128-key tiles, persistent up to 8k keys (0.76 -> 0.83-0.91x cuDNN at 512-2k keys), one
    // block per tile beyond (0.98x at 16k, against 0.76-0.88x persistent). Without causality: from
    // 4k keys one block per tile with 176-key tiles (0.99x at 16k against 0.96x with 128); below,
    // persistent with 128-key tiles and two Q slots (0.74 -> 0.89x at 512). 2026-12-01, H200.
    if (p.is_causal)
        return sm90::launch_prefill_sm90_config<128, 128, 2, 2, 2>(p, /*persistent=*/p.len_k <= 8192, stream);
    if (p.len_k >= 4096) return sm90::launch_prefill_sm90_config<128, 176, 2, 2, 1>(p, /*persistent=*/false, stream);
    return sm90::launch_prefill_sm90_config<128, 128, 2, 2, 2>(p, /*persistent=*/true, stream);
}

}  // namespace flashmin
