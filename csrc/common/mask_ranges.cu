// common/mask_ranges.cu: where a bool attn_mask lets each block of query rows see keys.
//
// A pass before the prefill kernels when the mask is bool with contiguous keys: for every group of
// kMaskRangeRows (64) query rows of every (batch, mask head), the first and the last key any of
// its rows may see (N and -1 when none), read once with 16-byte loads. The kernels then load only
// the K/V tiles between them (KeyRange and ranges, common/block_info.cuh): a static cache's empty
// slots past the last filled key, and left padding before a batch row's first real token, are
// skipped instead of masked element by element. The decode kernel scans its few rows itself.
#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/softmax.cuh"

namespace flashmin {
namespace {

// 512 threads, 16 loads in flight each: a group of 64 rows of up to 2048 keys (8192 chunks of 16
// bytes) is read in one round trip.
constexpr int kThreads = 512, kBatch = 16;

__global__ void __launch_bounds__(kThreads) mask_ranges_kernel(const AttnParams p) {
    __shared__ int scratch[3];
    const int g = blockIdx.x, hm = blockIdx.y, b = blockIdx.z;
    const int row0 = g * kMaskRangeRows;
    const int rows = p.mask_row_stride == 0 ? 1 : min(kMaskRangeRows, p.len_q - row0);
    const int N = p.seqlens_k ? seqlens_k_of(p, b) : p.len_k;
    const int3 seen = mask_key_range<kThreads, kBatch>(p, b, hm, row0, rows, N, scratch);
    if (threadIdx.x == 0) {
        const int64_t at = (static_cast<int64_t>(b) * gridDim.y + hm) * gridDim.x + g;
        p.mask_ranges[2 * at] = seen.x;
        p.mask_ranges[2 * at + 1] = seen.y;
    }
}

}  // namespace

cudaError_t run_mask_ranges(const AttnParams& p, cudaStream_t stream) {
    const dim3 grid((p.len_q + kMaskRangeRows - 1) / kMaskRangeRows, p.mask_range_heads, p.batch);
    mask_ranges_kernel<<<grid, kThreads, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace flashmin
