// decode_config.h: the head dims the decode kernel is compiled for, and their entry points.
//
// One instantiation file per head dim (decode_hdim*.cu) keeps builds parallel; decode_launch.cu
// picks the one that serves a call (DECODE_HEADDIM_SWITCH, common/switch.h). Plain C++: no device code.
#pragma once

#include "flashmin.h"

namespace flashmin {
namespace decode {

// The decode kernel (and the merge of its splits) compiled for kHeadDim (64, 128), for a call
// whose head dim is a multiple of 8 up to kHeadDim, zero-padded.
template <int kHeadDim>
cudaError_t run_decode_hdim(const AttnParams& p, cudaStream_t stream);

template <> cudaError_t run_decode_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_decode_hdim<128>(const AttnParams& p, cudaStream_t stream);

}  // namespace decode
}  // namespace flashmin
