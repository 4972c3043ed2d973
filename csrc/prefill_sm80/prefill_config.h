// prefill_config.h: the head dims the sm80 prefill kernel is compiled for, and their entry points.
//
// One instantiation file per head dim (prefill_hdim*.cu) keeps builds parallel; prefill_launch.cu
// picks the one that serves a call (HEADDIM_SWITCH, common/switch.h). Plain C++: no device code.
#pragma once

#include "flashmin.h"

namespace flashmin {
namespace sm80 {

// The prefill kernel compiled for kHeadDim (32, 64, 96, 128, 256), for a call whose head dim is
// a multiple of 8 up to kHeadDim, zero-padded.
template <int kHeadDim>
cudaError_t run_prefill_hdim(const AttnParams& p, cudaStream_t stream);

template <> cudaError_t run_prefill_hdim<32>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<64>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<96>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<128>(const AttnParams& p, cudaStream_t stream);
template <> cudaError_t run_prefill_hdim<256>(const AttnParams& p, cudaStream_t stream);

}  // namespace sm80
}  // namespace flashmin
