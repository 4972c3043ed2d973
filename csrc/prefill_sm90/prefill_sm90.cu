// prefill_sm90.cu: the Hopper prefill kernel's head-dim dispatch, its tensor maps and the
// ping-pong switch.
//
// Configurations (kHeadDim, keys per tile, K/V slots, math warpgroups of 64 rows, Q slots), and
// whether the grid is persistent (one block per SM looping over tiles) or one block per tile; the
// choices and their measured reasons are beside each launch in prefill_sm90_hdim*.cu.
//   hdim 64:  128 keys, 3 slots, 3 warpgroups (192 rows; 160 registers each), 2 Q slots; where
//             192-row tiles would leave more than 20% of their rows idle (up to 256 queries),
//             and with causality up to 1024 queries and keys, 2 warpgroups (128 rows).
//   hdim 128: 128 keys, 2 slots, 2 warpgroups (240 registers each), 2 Q slots; without
//             causality from 8k keys 176-key tiles with one Q slot (O stored from registers).
//   hdim 256:  80 keys, 2 slots, 2 warpgroups, 1 Q slot (O alone is 128 registers a thread; 226 KB);
//             64-key tiles (192 KB) where 80-key ones would pad the keys by more than 10%.
// Every configuration runs the ping-pong schedule unless FLASHMIN_SM90_PINGPONG=0.
// Short key ranges gain from the persistent grid (the next tile's Q and K/V land while this one
// finishes); long ones can lose there (the hardware's block scheduler balances unequal tiles
// better): hdim 64 runs one block per tile from 8k keys, hdim 128 with causality beyond 8k, hdim
// 256 always. Head dims that are multiples of 8 run in the next compiled size up: the tensor maps
// know the real head dim, so the copy engine fills the missing columns with zeros and stores
// only the real ones.
#include <cstdlib>

#include <cuda.h>

#include "flashmin.h"
#include "prefill_sm90/prefill_sm90_launch_template.cuh"

namespace flashmin {

cudaError_t run_prefill_sm90_hdim64(const AttnParams& p, cudaStream_t stream);
cudaError_t run_prefill_sm90_hdim128(const AttnParams& p, cudaStream_t stream);
cudaError_t run_prefill_sm90_hdim256(const AttnParams& p, cudaStream_t stream);

cudaError_t run_prefill_sm90(const AttnParams& p, cudaStream_t stream) {
    if (p.head_dim <= 64) return run_prefill_sm90_hdim64(p, stream);
    if (p.head_dim <= 128) return run_prefill_sm90_hdim128(p, stream);
    if (p.head_dim <= 256) return run_prefill_sm90_hdim256(p, stream);
    return cudaErrorInvalidValue;
}

namespace sm90 {
namespace {

// cuTensorMapEncodeTiled is a driver function: found once through the runtime, so the extension
// needs no link against libcuda.
using EncodeTiled = decltype(&cuTensorMapEncodeTiled);

EncodeTiled encode_tiled() {
    static EncodeTiled fn = [] {
        void* ptr = nullptr;
        cudaDriverEntryPointQueryResult found{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &found) != cudaSuccess ||
            found != cudaDriverEntryPointSuccess)
            ptr = nullptr;
        return reinterpret_cast<EncodeTiled>(ptr);
    }();
    return fn;
}

}  // namespace

bool pingpong_enabled() {
    static const bool on = [] {
        const char* v = std::getenv("FLASHMIN_SM90_PINGPONG");
        return !(v != nullptr && v[0] == '0' && v[1] == '\0');
    }();
    return on;
}

bool make_tensor_map(CUtensorMap* map, const void* ptr, DType dtype, int head_dim, int rows, int heads, int batch,
                     int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows) {
    const EncodeTiled encode = encode_tiled();
    if (encode == nullptr) return false;
    // A dimension of size 1 is never stepped over, but its stride must still be a multiple of 16 bytes.
    auto bytes = [](int64_t size, int64_t stride) { return static_cast<cuuint64_t>(size == 1 ? 16 : stride * 2); };
    // A tensor with no rows (no keys) is never read, but a map must have at least one.
    const cuuint64_t dims[4] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(rows > 0 ? rows : 1),
                                static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
    const cuuint64_t strides[3] = {bytes(rows, row_stride), bytes(heads, head_stride), bytes(batch, batch_stride)};
    const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
    const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    const CUtensorMapDataType type = dtype == DType::kFloat16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    const CUresult res = encode(map, type, 4, const_cast<void*>(ptr), dims, strides, box, elem_strides,
                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return res == CUDA_SUCCESS;
}

}  // namespace sm90
}  // namespace flashmin
