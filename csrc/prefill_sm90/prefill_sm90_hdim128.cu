// Head dim 128 instantiation of the Hopper prefill kernel: its configurations, and why, beside
// the launch below (all of them at a glance: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim128(const AttnParams& p, cudaStream_t stream) {
    // Causal: 128-key tiles, persistent up to 8k keys (0.76 -> 0.83-0.91x cuDNN at 512-2k keys), one
    // block per tile beyond (0.98x at 16k, against 0.76-0.88x persistent). 2026-12-01, H200.
    // Without causality the grid is persistent at every length: with 128-key tiles and two Q slots
    // below 8k keys (0.74 -> 0.89x at 512, 2026-12-01), with 176-key tiles from 8k (0.99x at 16k
    // against 0.96x with 128). Against the 176-key tiles one block per tile that ran from 4k keys
    // before, in two settings (H200, 2026-12-02: a process per setting, config-sweep-compare.txt of
    // docs/results/2026-12-02-h200-59c440a, and switched per call in one process, ab-prefill.txt of
    // docs/results/2026-12-02-h200-7255f5d): 128 keys persistent 1.061x / 1.055x at 4k; 176 keys
    // persistent 1.004x / 1.024x at 8k, 1.011x / 1.007x at 16k. Checked again on this rule, five
    // rounds per call (docs/results/2026-12-02-h200-ac74371, ab-prefill-2-*.txt): at 4k 1.055x
    // (bf16); from 8k a tie (persistent against one block per tile: 8k 1.009x fp16 / 0.983x bf16,
    // 16k 1.002x / 0.997x).
    if (p.is_causal)
        return sm90::launch_prefill_sm90_config<128, 128, 2, 2, 2>(p, /*persistent=*/p.len_k <= 8192, stream);
    if (p.len_k >= 8192) return sm90::launch_prefill_sm90_config<128, 176, 2, 2, 1>(p, /*persistent=*/true, stream);
    return sm90::launch_prefill_sm90_config<128, 128, 2, 2, 2>(p, /*persistent=*/true, stream);
}

}  // namespace flashmin
