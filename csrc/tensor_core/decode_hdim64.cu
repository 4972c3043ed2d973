// Head dim 64 decode instantiations: the tensor-core kernel with 32-row, 128-key tiles (two warps, one
// 16-row slice each, Q in registers), with and without its split-KV mode. See tc_fwd.cu.
#include <algorithm>

#include "tensor_core/tc_fwd_kernel.cuh"

namespace flashmin {

namespace {
using DecodeTraits = tc::Traits<64, 32, 128, 2, true>;
}

int plan_decode_splits_hdim64(const AttnParams& p) {
    // Enough blocks for one full wave, never more: a second, partial wave costs a whole wave.
    static int per_sm = -1;
    if (per_sm < 0) {
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, tc::tc_fwd_kernel<DecodeTraits, __half, false, true>,
                                                          DecodeTraits::kThreads, DecodeTraits::kSmemBytes) != cudaSuccess ||
            per_sm < 1)
            per_sm = 1;
    }
    const long blocks = static_cast<long>(p.batch) * p.heads_q * ((p.len_q + DecodeTraits::kBlockM - 1) / DecodeTraits::kBlockM);
    const int tiles = (p.len_k + DecodeTraits::kBlockN - 1) / DecodeTraits::kBlockN;
    const long wave = static_cast<long>(per_sm) * p.num_sms;
    const int splits = static_cast<int>(std::min<long>(std::max<long>(1, wave / std::max(1L, blocks)), 128));
    return std::max(1, std::min(splits, tiles));
}

cudaError_t run_decode_fwd_hdim64(const AttnParams& p, cudaStream_t stream) {
    using Tr = DecodeTraits;
    if (p.dtype == DType::kFloat16)
        return p.num_splits > 1 ? tc::launch_tc<Tr, __half, true>(p, stream) : tc::launch_tc<Tr, __half, false>(p, stream);
    return p.num_splits > 1 ? tc::launch_tc<Tr, __nv_bfloat16, true>(p, stream) : tc::launch_tc<Tr, __nv_bfloat16, false>(p, stream);
}

}  // namespace flashmin
