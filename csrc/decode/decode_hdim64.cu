// Head dim 64 instantiation of the decode kernel and the merge of its splits (one file per head
// dim keeps builds parallel). Its configuration and the measured reasons: DecodeConfig<64> in
// decode_config.h.
#include "decode/decode_config.h"
#include "decode/decode_launch_template.cuh"

namespace flashmin {
namespace decode {

template <>
cudaError_t run_decode_hdim<64>(const AttnParams& p, cudaStream_t stream) {
    return launch_decode<DecodeTraits<DecodeConfig<64>>>(p, stream);
}

}  // namespace decode
}  // namespace flashmin
