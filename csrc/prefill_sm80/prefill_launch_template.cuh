// prefill_launch_template.cuh: launching the sm80 prefill kernel for one configuration.
//
// launch_prefill<Tr> picks the instantiation for a call's dtype and path (plain, or general:
// attn_mask, softcap, ALiBi), so each per-head-dim file, prefill_hdim*.cu, names only its
// configuration; it opts in to the shared memory it needs and launches one block per (kBlockM
// query rows, head, batch).
#pragma once

#include "flashmin.h"
#include "common/launch.cuh"
#include "common/switch.h"
#include "prefill_sm80/prefill_kernel.cuh"

namespace flashmin {
namespace sm80 {

template <typename Tr, typename T, bool kGeneral>
cudaError_t launch_prefill_kernel(const AttnParams& p, cudaStream_t stream) {
    constexpr auto kernel = prefill_kernel<Tr, T, kGeneral>;
    if (Tr::kSmemBytes > p.max_smem_per_block) return cudaErrorInvalidConfiguration;
    const cudaError_t err = opt_in_smem<kernel>(Tr::kSmemBytes);
    if (err != cudaSuccess) return err;
    const dim3 grid((p.len_q + Tr::kBlockM - 1) / Tr::kBlockM, p.heads_q, p.batch);
    kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
    return cudaGetLastError();
}

template <typename Tr>
cudaError_t launch_prefill(const AttnParams& p, cudaStream_t stream) {
    return DTYPE_SWITCH(p.dtype, T, [&] {
        return BOOL_SWITCH(general_path(p) || p.block_table != nullptr, kGeneral, [&] {
            return launch_prefill_kernel<Tr, T, kGeneral>(p, stream);
        });
    });
}

}  // namespace sm80
}  // namespace flashmin
