// Head dim 256 instantiation of the Hopper prefill kernel: its configurations, and why, beside
// the launch below (all of them at a glance: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

// 64-key tiles: prefill_sm90_hdim256_keys64.cu.
cudaError_t run_prefill_sm90_hdim256_keys64(const AttnParams& p, cudaStream_t stream);

cudaError_t run_prefill_sm90_hdim256(const AttnParams& p, cudaStream_t stream) {
    // 80-key tiles pad short key ranges: 128 and 256 keys run 160 and 320 keys' worth of products.
    // More than 10% padding: 64-key tiles. H200, 2026-12-02, fp16, against 80-key tiles in the run
    // before: 1.06x / 1.07x at 128 / 256 keys, 1.05x / 1.06x causal (512 keys and up pad 9% or less).
    if (sm90::padded_to(p.len_k, 80) * 10 > static_cast<int64_t>(p.len_k) * 11) return run_prefill_sm90_hdim256_keys64(p, stream);
    // One block per tile: persistent (one Q slot fits) was 0.60-0.64x cuDNN at 512 keys against 0.86x.
    return sm90::launch_prefill_sm90_config<256, 80, 2, 2, 1>(p, /*persistent=*/false, stream);
}

}  // namespace flashmin
