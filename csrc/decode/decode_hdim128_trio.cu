// Head dim 128 instantiation of the decode kernel in its trio configuration (three blocks an SM on
// sm_90) and the merge of its splits; a file of its own keeps builds parallel. The configuration,
// and when the plan runs it: DecodeConfigTrio<128> in decode_config.h, rule (f) of decode_plan.cu.
#include "decode/decode_config.h"
#include "decode/decode_launch_template.cuh"

namespace flashmin {
namespace decode {

cudaError_t run_decode_trio_hdim128(const AttnParams& p, cudaStream_t stream) {
    return launch_decode<DecodeTraits<DecodeConfigTrio<128>>>(p, stream);
}

}  // namespace decode
}  // namespace flashmin
