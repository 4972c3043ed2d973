// Head dim 96 instantiation of the sm80 prefill kernel (one file per head dim keeps builds parallel).
// Tile shape, buffering and rescaling, and their measured reasons: see prefill_launch.cu.
#include "prefill_sm80/prefill_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_fwd_hdim96(const AttnParams& p, cudaStream_t stream) {
    using Tr = sm80::PrefillTraits<96, 128, 64, 4, false, 1, true>;
    return sm80::launch_prefill<Tr>(p, stream);
}

}  // namespace flashmin
