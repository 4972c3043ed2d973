// Head dim 128 instantiation of the decode kernel in its pair configuration (two blocks an SM on
// sm_90) and the merge of its splits; a file of its own keeps builds parallel. The configuration,
// and when the plan runs it: DecodeConfigPair<128> in decode_config.h, rule (e) of decode_plan.cu.
#include "decode/decode_config.h"
#include "decode/decode_launch_template.cuh"

namespace flashmin {
namespace decode {

template <>
cudaError_t run_decode_pair_hdim<128>(const AttnParams& p, cudaStream_t stream) {
    return launch_decode<DecodeTraits<DecodeConfigPair<128>>>(p, stream);
}

}  // namespace decode
}  // namespace flashmin
