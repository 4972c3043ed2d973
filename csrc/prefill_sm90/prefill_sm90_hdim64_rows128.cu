// Head dim 64 with two math warpgroups (128-row tiles), for query lengths that leave a 192-row
// tile more than 20% idle (prefill_sm90_hdim64.cu).
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim64_rows128(const AttnParams& p, cudaStream_t stream) {
    // Three K/V slots (128 KB of shared memory with two Q slots); persistent up to 2k keys (the
    // 192-row tiles' rule before they went to 4k; these serve short queries, not re-measured).
    return sm90::launch_prefill_sm90_config<64, 128, 3, 2, 2>(p, /*persistent=*/p.len_k <= 2048, stream);
}

}  // namespace flashmin
