// Head dim 128 instantiation of the Hopper prefill kernel (configuration and reason: prefill_sm90.cu).
#include <cstdlib>

#include "prefill_sm90/prefill_sm90_kernel.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim128(const AttnParams& p, cudaStream_t stream) {
    static const bool alt = std::getenv("FLASHMIN_SM90_ALT") != nullptr;
    if (alt && !p.is_causal) return sm90::launch_prefill_sm90<sm90::PrefillTraits<128, 176, 2, 2, 1>>(p, stream);
    if (alt) return sm90::launch_prefill_sm90<sm90::PrefillTraits<128, 128, 2, 2, 1>>(p, stream);
    return sm90::launch_prefill_sm90<sm90::PrefillTraits<128, 128, 2, 2, 2>>(p, stream);
}

}  // namespace flashmin
