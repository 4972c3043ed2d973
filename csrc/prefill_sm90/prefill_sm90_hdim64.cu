// Head dim 64 instantiation of the Hopper prefill kernel: its configurations, and why, beside
// the launch below (all of them at a glance: prefill_sm90.cu).
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

// Two math warpgroups (128-row tiles): prefill_sm90_hdim64_rows128.cu.
cudaError_t run_prefill_sm90_hdim64_rows128(const AttnParams& p, cudaStream_t stream);

cudaError_t run_prefill_sm90_hdim64(const AttnParams& p, cudaStream_t stream) {
    // 192-row tiles leave rows idle where the queries do not fill them (128 or 256 queries use 67%
    // of their rows, 512 or 1024 89%). More than 20% idle: 128-row tiles. H200, 2026-12-02, fp16,
    // against 192-row tiles in the run before (cuDNN within 2% in both): 1.18x / 1.11x at 128 / 256
    // queries, 1.20x / 1.33x causal; at 512 and 1024 (11% idle) 0.89x / 0.91x without causality,
    // so those keep 192 rows.
    // With causality also up to 1024 queries and keys, where the diagonal is a large share of the
    // work and a 192-row tile wastes more of it (a 64-row warpgroup above the diagonal computes a
    // whole masked key tile): 1.07x / 1.14x at 512 / 1024, 1.00-1.01x at 2048 (so 192 rows from
    // there, and for a few queries over a long cache). H200, 2026-12-02, fp16, two settings against
    // 192-row tiles in the same process (docs/results/2026-12-02-h200-59c440a).
    if (sm90::padded_to(p.len_q, 192) * 5 > static_cast<int64_t>(p.len_q) * 6 ||
        (p.is_causal && p.len_q <= 1024 && p.len_k <= 1024))
        return run_prefill_sm90_hdim64_rows128(p, stream);
    // Persistent up to 4k keys: 0.74 -> 0.92x cuDNN at 512 keys; one block per tile from 8k keys:
    // 1.00-1.02x there against 0.87-0.93x persistent (2026-12-01, H200). At 4k keys persistent
    // was faster in two settings: 1.037x / 1.072x (causal no / yes) in a process of its own
    // (docs/results/2026-12-02-h200-59c440a, config-sweep-compare.txt, s2) and 1.03x / 1.05x
    // switched per call in one process against cuDNN (H200, 2026-12-02; ab-prefill.txt of
    // docs/results/2026-12-02-h200-7255f5d), where 8k causal lost 6% persistent.
    return sm90::launch_prefill_sm90_config<64, 128, 3, 3, 2>(p, /*persistent=*/p.len_k <= 4096, stream);
}

}  // namespace flashmin
