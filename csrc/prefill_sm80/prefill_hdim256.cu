// Head dim 256 instantiation of the sm80 prefill kernel (one file per head dim keeps builds parallel).
// Tile shape, buffering and rescaling, and their measured reasons: see prefill_launch.cu.
#include "prefill_sm80/prefill_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_fwd_hdim256(const AttnParams& p, cudaStream_t stream) {
    using Tr = sm80::PrefillTraits<256, 64, 32, 4, false, 2, false, true>;
    return sm80::launch_prefill<Tr>(p, stream);
}

}  // namespace flashmin
