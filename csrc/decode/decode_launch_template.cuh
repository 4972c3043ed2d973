// decode_launch_template.cuh: launching the decode kernel (and the merge of its splits) for one
// configuration.
//
// launch_decode<Tr> picks the instantiation for a call's dtype, path (plain, or general: attn_mask,
// softcap, ALiBi), cache (contiguous or paged) and split count (so each per-head-dim file, decode_hdim*.cu, names only its configuration), launches the decode grid in
// the order the plan chose and, with more than one split, the merge as a programmatic dependent
// of it (sm90+: it is resident and waiting when the decode grid finishes).
#pragma once

#include "flashmin.h"
#include "common/launch.cuh"
#include "common/switch.h"
#include "decode/combine_kernel.cuh"
#include "decode/decode_kernel.cuh"

namespace flashmin {
namespace decode {

template <typename Tr, typename T, bool kGeneral, bool kSplitKV, bool kPaged>
cudaError_t launch_decode_kernel(const AttnParams& p, cudaStream_t stream) {
    constexpr auto kernel = decode_kernel<Tr, T, kGeneral, kSplitKV, kPaged>;
    if (Tr::kSmemBytes > p.max_smem_per_block) return cudaErrorInvalidConfiguration;
    const cudaError_t err = opt_in_smem<kernel>(Tr::kSmemBytes);
    if (err != cudaSuccess) return err;
    const unsigned row_blocks = (p.len_q + Tr::kBlockM - 1) / Tr::kBlockM;
    const dim3 grid = kSplitKV && p.split_sweep ? dim3(row_blocks, p.num_splits, p.batch * p.heads_q)
                                                : dim3(row_blocks, p.heads_q, p.batch * (kSplitKV ? p.num_splits : 1));
    kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
    if constexpr (kSplitKV) {
        const int64_t rows = static_cast<int64_t>(p.batch) * p.heads_q * p.len_q;
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(static_cast<unsigned>((rows + 3) / 4));
        cfg.blockDim = dim3(128);
        cfg.stream = stream;
        cudaLaunchAttribute attr;
        attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr.val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = &attr;
        cfg.numAttrs = p.dependent_launch ? 1 : 0;
        const cudaError_t err2 = cudaLaunchKernelEx(&cfg, combine_splits_kernel<T, Tr::kHeadDim>, p);
        if (err2 != cudaSuccess) return err2;
    }
    return cudaGetLastError();
}

template <typename Tr>
cudaError_t launch_decode(const AttnParams& p, cudaStream_t stream) {
    return DTYPE_SWITCH(p.dtype, T, [&] {
        return BOOL_SWITCH(general_path(p), kGeneral, [&] {
            return BOOL_SWITCH(p.num_splits > 1, kSplitKV, [&] {
                return BOOL_SWITCH(p.block_table != nullptr, kPaged, [&] {
                    return launch_decode_kernel<Tr, T, kGeneral, kSplitKV, kPaged>(p, stream);
                });
            });
        });
    });
}

}  // namespace decode
}  // namespace flashmin
