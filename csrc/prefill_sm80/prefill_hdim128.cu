// Head dim 128 instantiation of the sm80 prefill kernel (one file per head dim keeps builds parallel).
// Its configuration and the measured reasons: PrefillConfig<128> in prefill_config.h.
#include "prefill_sm80/prefill_config.h"
#include "prefill_sm80/prefill_launch_template.cuh"

namespace flashmin {
namespace sm80 {

template <>
cudaError_t run_prefill_hdim<128>(const AttnParams& p, cudaStream_t stream) {
    return launch_prefill<PrefillTraits<PrefillConfig<128>>>(p, stream);
}

}  // namespace sm80
}  // namespace flashmin
