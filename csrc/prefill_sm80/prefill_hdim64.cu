// Head dim 64 instantiation of the sm80 prefill kernel (one file per head dim keeps builds parallel).
// Tile shape, buffering and rescaling, and their measured reasons: see prefill_launch.cu.
#include "prefill_sm80/prefill_config.h"
#include "prefill_sm80/prefill_launch_template.cuh"

namespace flashmin {
namespace sm80 {

template <>
cudaError_t run_prefill_hdim<64>(const AttnParams& p, cudaStream_t stream) {
    using Tr = PrefillTraits<64, 128, 64, 4, true, 2, false, true>;
    return launch_prefill<Tr>(p, stream);
}

}  // namespace sm80
}  // namespace flashmin
